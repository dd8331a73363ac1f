"""The Django admin driven in headless Chromium."""
