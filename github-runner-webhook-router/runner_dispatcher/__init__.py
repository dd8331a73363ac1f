"""The dispatcher: consumes the router's flavour queues and gets a runner started per job."""
