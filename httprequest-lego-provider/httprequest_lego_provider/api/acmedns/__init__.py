"""The acme-dns protocol (``/register``, ``/update``, ``/health``) on the provider's grants."""
