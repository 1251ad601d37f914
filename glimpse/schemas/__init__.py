"""The JSON schemas served at ``/v2/schemas/*``: the same objects requests are validated against."""
