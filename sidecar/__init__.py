"""bioshard: an Envoy ext_authz sidecar that routes each request by its user's behaviour."""

__all__ = ["__version__"]

__version__ = "0.1.0"
