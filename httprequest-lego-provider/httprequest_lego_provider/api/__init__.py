"""The httpreq endpoints, their permissions and the admin API."""
