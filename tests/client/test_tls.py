"""One TLS context per process, and none of the certificate work for plain-http (loopback) URLs."""

import ssl

from gcdial.http import tls_context, tls_for


def test_https_verifies_and_the_context_is_shared() -> None:
    context = tls_for("https://api.mypurecloud.ie", True)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert tls_for("https://login.mypurecloud.ie", True) is context  # read the store once


def test_verify_false_is_honoured_for_https() -> None:
    assert tls_for("https://api.mypurecloud.ie", False).verify_mode is ssl.CERT_NONE


def test_plain_http_never_reads_the_certificate_store() -> None:
    assert tls_for("http://127.0.0.1:8765", True) is tls_context(False)
