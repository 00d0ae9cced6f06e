"""A DBSC browser for tests: what Chromium does, with a software key, over any httpx client.

Re-exported as :class:`sessionware.testing.DBSCBrowser`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ._codec import b64encode

__all__ = ["DBSCBrowser", "parse_registration"]

_INNER = re.compile(r'\(([^)]*)\)((?:;[a-z*][a-z0-9_\-.*]*="(?:[^"\\]|\\.)*")*)')
_PARAM = re.compile(r';([a-z*][a-z0-9_\-.*]*)="((?:[^"\\]|\\.)*)"')
_CHALLENGE = re.compile(r'"((?:[^"\\]|\\.)*)"((?:;[a-z*][a-z0-9_\-.*]*="(?:[^"\\]|\\.)*")*)')


def _params(text: str) -> dict[str, str]:
    return {key: value.replace('\\"', '"').replace("\\\\", "\\") for key, value in _PARAM.findall(text)}


def parse_registration(header: str) -> list[tuple[list[str], dict[str, str]]]:
    """The offers a ``Secure-Session-Registration`` header makes: ``(algorithms, params)`` each."""
    return [(inner.split(), _params(params)) for inner, params in _INNER.findall(header)]


def _b64json(value: object) -> str:
    return b64encode(json.dumps(value, separators=(",", ":")).encode())


class DBSCBrowser:
    """Plays a DBSC browser against an app, through an httpx-style client and its cookie jar.

    It makes a key pair (ES256 by default, ``algorithm="RS256"`` for RSA),
    registers when a response offers registration, and refreshes the bound
    cookie as Chromium does: first without a proof (the server answers 403
    with a challenge), then with the challenge signed, or straight away with
    a challenge the server pushed earlier (``Secure-Session-Challenge``).
    Every step returns the server's response so a test can look at it;
    :meth:`proof` builds proofs of any shape, broken ones included, for tests
    of what the server refuses.

    The client must send https requests (DBSC is https-only): for example
    ``starlette.testclient.TestClient(app, base_url="https://testserver")``
    or ``httpx.Client(transport=httpx.WSGITransport(app=app),
    base_url="https://testserver")``.

    Example::

        browser = DBSCBrowser(client)
        response = client.post("/login", data={...})
        assert browser.register(response).status_code == 200
        clock.advance(600)                 # the bound cookie expires
        assert browser.refresh().status_code == 200
    """

    def __init__(self, client: Any, *, algorithm: str = "ES256") -> None:
        if algorithm not in ("ES256", "RS256"):
            raise ValueError("DBSCBrowser's algorithm is 'ES256' or 'RS256'")
        self.client = client
        self.algorithm = algorithm
        self.key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if algorithm == "ES256"
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        #: The DBSC session identifier, once registered.
        self.session_identifier: str | None = None
        #: Where refreshes go, once registered.
        self.refresh_url: str | None = None
        #: The session config of the last successful registration or refresh.
        self.config: dict[str, Any] | None = None
        #: A challenge the server pushed, used by the next refresh.
        self.challenge: str | None = None

    # -- keys and proofs ---------------------------------------------------------------

    @staticmethod
    def jwk_of(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> dict[str, str]:
        """The public JWK of ``key``."""
        if isinstance(key, ec.EllipticCurvePrivateKey):
            numbers = key.public_key().public_numbers()
            return {
                "kty": "EC",
                "crv": "P-256",
                "x": b64encode(numbers.x.to_bytes(32, "big")),
                "y": b64encode(numbers.y.to_bytes(32, "big")),
            }
        rsa_numbers = key.public_key().public_numbers()
        n = rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")
        e = rsa_numbers.e.to_bytes((rsa_numbers.e.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "n": b64encode(n), "e": b64encode(e)}

    def proof(
        self,
        jti: str,
        *,
        jwk: bool = False,
        alg: str | None = None,
        typ: str = "dbsc+jwt",
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
        claims: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
    ) -> str:
        """A proof JWT over challenge ``jti``, signed with this browser's key (or ``key``).

        ``jwk=True`` puts the public key in the header (registration). ``alg``
        and ``typ`` override the header's (``alg="none"`` makes an unsigned
        token); ``claims`` and ``header`` add to payload and header.
        """
        signer = self.key if key is None else key
        alg = alg or ("ES256" if isinstance(signer, ec.EllipticCurvePrivateKey) else "RS256")
        head: dict[str, Any] = {"alg": alg, "typ": typ}
        if jwk:
            head["jwk"] = self.jwk_of(signer)
        head.update(header or {})
        body = {"jti": jti, **(claims or {})}
        signing_input = _b64json(head) + "." + _b64json(body)
        if alg == "none":
            return signing_input + "."
        data = signing_input.encode()
        if isinstance(signer, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(signer.sign(data, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            signature = signer.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64encode(signature)

    # -- the protocol ------------------------------------------------------------------

    def register(self, response: Any) -> Any:
        """Register at the path ``response``'s ``Secure-Session-Registration`` offers.

        Raises AssertionError if the response offers none (or not this
        browser's algorithm). Returns the registration's response.
        """
        header = response.headers.get("secure-session-registration")
        assert header, "the response offers no DBSC registration"
        for algorithms, params in parse_registration(header):
            if self.algorithm in algorithms and "path" in params:
                break
        else:
            raise AssertionError(f"no offer for {self.algorithm} in {header!r}")
        proof = self.proof(params.get("challenge", ""), jwk=True)
        answer = self.client.post(params["path"], headers={"Secure-Session-Response": proof})
        self._configure(answer)
        return answer

    def refresh(self, *, quoted: bool = False) -> Any:
        """Renew the bound cookie: with a pushed challenge if there is one, else after a 403.

        ``quoted=True`` sends the headers as sf-strings (the spec's form)
        instead of bare (Chromium's). Returns the last response.
        """
        if self.session_identifier is None or self.refresh_url is None:
            raise RuntimeError("DBSCBrowser.refresh() needs a successful register() first")
        answer = self._refresh_once(quoted)
        if answer.status_code == 403 and self._take_challenge(answer):
            answer = self._refresh_once(quoted)
        self._configure(answer)
        return answer

    def _refresh_once(self, quoted: bool) -> Any:
        assert self.session_identifier is not None
        assert self.refresh_url is not None
        identifier = self.session_identifier
        headers = {"Sec-Secure-Session-Id": f'"{identifier}"' if quoted else identifier}
        if self.challenge is not None:
            proof = self.proof(self.challenge)
            headers["Secure-Session-Response"] = f'"{proof}"' if quoted else proof
            self.challenge = None  # a challenge is used once
        return self.client.post(self.refresh_url, headers=headers)

    def _take_challenge(self, response: Any) -> bool:
        header = response.headers.get("secure-session-challenge")
        if not header:
            return False
        for value, params in _CHALLENGE.findall(header):
            if _params(params).get("id") == self.session_identifier:
                self.challenge = value
                return True
        return False

    def _configure(self, response: Any) -> None:
        if response.status_code != 200:
            return
        self.config = response.json()
        self.session_identifier = self.config["session_identifier"]
        self.refresh_url = self.config.get("refresh_url", self.refresh_url)
        self._take_challenge(response)
