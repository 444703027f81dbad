"""The service's OpenAPI document, built from the app without serving it.

``python -m gcdial.serve.openapi_doc`` prints it as ``/openapi.json`` serves it (keys sorted, so
that a copy kept in the repository diffs well). ``make js-client`` keeps
``clients/js/openapi.json`` from it and generates the TypeScript client's types from that copy;
``tests/serve/test_js_client.py`` fails when the copy drifts from what the service serves.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["document", "dumps", "main"]


def document() -> dict[str, Any]:
    """The OpenAPI document of an app on a throwaway store (nothing is started or dialed)."""
    from gcdial.client import AsyncClient
    from gcdial.serve.app import create_app
    from gcdial.serve.config import ServeConfig
    from gcdial.serve.sqlite_store import SqliteStore

    with tempfile.TemporaryDirectory(prefix="gcdial-openapi-") as folder:
        store = SqliteStore(Path(folder) / "serve.sqlite3")
        try:

            def no_client() -> AsyncClient:  # the document needs no Genesys client
                raise RuntimeError("not started")

            app = create_app(
                store,
                no_client,
                ServeConfig(campaigns_dir=str(Path(folder) / "campaigns")),
                page_secret=b"openapi-document-only-" + b"x" * 16,
            )
            return app.openapi()
        finally:
            store.close()


def dumps(doc: dict[str, Any]) -> str:
    """The document as kept in the repository: sorted keys, two-space indent, final newline."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    """Print the document."""
    sys.stdout.write(dumps(document()))


if __name__ == "__main__":
    main()
