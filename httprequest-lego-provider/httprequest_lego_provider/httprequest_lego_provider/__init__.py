"""Django project of the httprequest lego provider."""
