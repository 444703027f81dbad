"""The supervisors' live page of ``gcdial serve`` (issue 12): ``mount_page(app, service)``."""

from gcdial.serve.web.routes import mount_page

__all__ = ["mount_page"]
