"""The one error hierarchy of Glimpse.

Every error the service raises on purpose is a :class:`GlimpseError`. Each class
knows its HTTP status; :mod:`glimpse.http.errors` is the only place that turns
one into a response body (in Glance's formats).

::

    GlimpseError                      500
    ├── BadRequest                    400
    │   ├── InvalidParameter          400
    │   └── BodyNotExpected           400
    ├── Unauthorized                  401
    ├── Forbidden                     403
    │   ├── ReadOnlyAttribute         403
    │   ├── ReservedAttribute         403
    │   ├── PolicyDenied              403
    │   └── ReadOnlyContext           403
    ├── NotFound                      404
    ├── MethodNotAllowed              405  (carries the Allow header)
    ├── Conflict                      409
    │   └── Duplicate                 409
    ├── Gone                          410
    ├── RequestEntityTooLarge         413  (quotas, size caps)
    ├── UnsupportedMediaType          415
    ├── RangeNotSatisfiable           416
    ├── RequestHeaderTooLarge         431
    ├── NotImplementedMethod          501
    └── ServiceUnavailable            503
"""

from __future__ import annotations


class GlimpseError(Exception):
    """Base of every error Glimpse raises deliberately."""

    status = 500
    title = "Internal Server Error"
    #: The text Glance's webob class shows when no explanation is given.
    default_explanation = (
        "The server has either erred or is incapable of performing the requested operation."
    )

    def __init__(self, message: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.message = message if message is not None else self.default_explanation
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.message)


class BadRequest(GlimpseError):
    status = 400
    title = "Bad Request"
    default_explanation = (
        "The server could not comply with the request since it is either malformed or "
        "otherwise incorrect."
    )


class InvalidParameter(BadRequest):
    """A query parameter or body field has a value we cannot accept."""


class BodyNotExpected(BadRequest):
    def __init__(self) -> None:
        super().__init__("A body is not expected with this request.")


class Unauthorized(GlimpseError):
    status = 401
    title = "Unauthorized"
    default_explanation = (
        "This server could not verify that you are authorized to access the document you requested."
    )


class Forbidden(GlimpseError):
    status = 403
    title = "Forbidden"
    default_explanation = "Access was denied to this resource."


class ReadOnlyAttribute(Forbidden):
    def __init__(self, attribute: str) -> None:
        super().__init__(f"Attribute '{attribute}' is read-only.")


class ReservedAttribute(Forbidden):
    def __init__(self, attribute: str) -> None:
        super().__init__(f"Attribute '{attribute}' is reserved.")


class PolicyDenied(Forbidden):
    """oslo.policy refused the action."""


class ReadOnlyContext(Forbidden):
    def __init__(self) -> None:
        super().__init__("Read-only access")


class NotFound(GlimpseError):
    status = 404
    title = "Not Found"
    default_explanation = "The resource could not be found."


class MethodNotAllowed(GlimpseError):
    status = 405
    title = "Method Not Allowed"
    default_explanation = "The method specified is not allowed for this resource."

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(None, {"Allow": ", ".join(allowed)})


class Conflict(GlimpseError):
    status = 409
    title = "Conflict"
    default_explanation = "There was a conflict when trying to complete your request."


class Duplicate(Conflict):
    """A resource with this identity already exists."""


class Gone(GlimpseError):
    status = 410
    title = "Gone"
    default_explanation = "This resource is no longer available.  No forwarding address is given."


class RequestEntityTooLarge(GlimpseError):
    status = 413
    title = "Request Entity Too Large"
    default_explanation = "The body of your request was too large for this server."


class UnsupportedMediaType(GlimpseError):
    status = 415
    title = "Unsupported Media Type"
    default_explanation = "The request media type is not supported by this server."


class RangeNotSatisfiable(GlimpseError):
    status = 416
    title = "Requested Range Not Satisfiable"
    default_explanation = "The Range requested is not available."


class RequestHeaderTooLarge(GlimpseError):
    status = 431
    title = "Request Header Fields Too Large"
    default_explanation = "The request header fields were too large."


class NotImplementedMethod(GlimpseError):
    status = 501
    title = "Not Implemented"
    default_explanation = "The request method is not implemented by this server."


class ServiceUnavailable(GlimpseError):
    status = 503
    title = "Service Unavailable"
    default_explanation = "The server is currently unavailable. Please try again at a later time."
