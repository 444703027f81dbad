"""The supervisors' live page of ``gcdial serve`` (issue 12): ``mount_page(app, service)``.

``mount_page`` is imported on first use, so that ``python -m gcdial.serve.web.demo`` starts
light and handles a Ctrl-C from its first instant (no traceback from half-done imports).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gcdial.serve.web.routes import mount_page

__all__ = ["mount_page"]


def __getattr__(name: str) -> Any:
    if name == "mount_page":
        from gcdial.serve.web.routes import mount_page

        return mount_page
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
