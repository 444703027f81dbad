"""The page's one template environment (HTML autoescaped)."""

from jinja2 import Environment, PackageLoader, select_autoescape

__all__ = ["TEMPLATES"]

TEMPLATES = Environment(
    loader=PackageLoader("gcdial.serve.web", "templates"),
    autoescape=select_autoescape(["html"]),
)
