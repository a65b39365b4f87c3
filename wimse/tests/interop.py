"""Independent JOSE implementation (PyJWT + cryptography) for locus-wimse interop tests.

Modes (JSON on stdin, JSON on stdout):
  verify  {"jwks", "now", "cases": [{"wit", "wpt", "aud", "access_token"?}], "ear"?: {"jwt", "jwks"}}
          -> {"results": [{"ok": bool, "error"?: str, "sub"?: str}], "ear_ok"?: bool}
          Checks every case as a relying party would: WIT typ/kid/alg/signature against the JWKS, exp against `now`,
          cnf.jwk.alg, then the WPT typ/alg/signature under cnf.jwk, aud, exp, wth and ath.
  sign    {"now", "aud", "access_token", "sub"}
          -> {"jwks", "cases": [{"wit", "wpt"}]}  (issuer P-256 ES256; workloads Ed25519 and P-256)
Clock checks of PyJWT are off: time is the `now` passed in, so results never depend on the wall clock.
"""
import base64
import hashlib
import json
import secrets
import sys

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

NO_CLOCK = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return b64(hashlib.sha256(token.encode("ascii")).digest())


def verify_case(jwks, now, case):
    wit, wpt = case["wit"], case["wpt"]
    header = jwt.get_unverified_header(wit)
    if header.get("typ") != "wit+jwt":
        raise ValueError("WIT typ")
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
    key = keys[header["kid"]]
    claims = jwt.decode(wit, key.key, algorithms=["ES256"], options=NO_CLOCK)
    if not now < claims["exp"]:
        raise ValueError("WIT expired")
    cnf = claims["cnf"]["jwk"]
    cnf_alg = cnf["alg"]
    cnf_key = jwt.PyJWK(cnf)
    pheader = jwt.get_unverified_header(wpt)
    if pheader.get("typ") != "wpt+jwt" or pheader.get("alg") != cnf_alg:
        raise ValueError("WPT typ/alg")
    proof = jwt.decode(wpt, cnf_key.key, algorithms=[cnf_alg], audience=case["aud"], options=NO_CLOCK)
    if not now < proof["exp"] <= now + 300:
        raise ValueError("WPT exp")
    if proof["wth"] != token_hash(wit):
        raise ValueError("wth")
    if "access_token" in case and proof.get("ath") != token_hash(case["access_token"]):
        raise ValueError("ath")
    if not proof.get("jti"):
        raise ValueError("jti")
    return claims["sub"]


def verify(inp):
    results = []
    for case in inp["cases"]:
        try:
            results.append({"ok": True, "sub": verify_case(inp["jwks"], inp["now"], case)})
        except Exception as e:  # every failure is a refusal
            results.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
    out = {"results": results}
    if "ear" in inp:
        ear = inp["ear"]
        h = jwt.get_unverified_header(ear["jwt"])
        key = {k.key_id: k for k in jwt.PyJWKSet.from_dict(ear["jwks"]).keys}[h["kid"]]
        claims = jwt.decode(ear["jwt"], key.key, algorithms=["ES256"], options=NO_CLOCK)
        out["ear_ok"] = h.get("typ") == "eat+jwt" and claims["eat_profile"] == "tag:ietf.org,2026:rats/ear#03"
    return out


def sign(inp):
    now = inp["now"]
    issuer = ec.generate_private_key(ec.SECP256R1())
    kid = "py-issuer-1"
    issuer_jwk = ECAlgorithm.to_jwk(issuer.public_key(), as_dict=True)
    issuer_jwk.update({"kid": kid, "use": "wit-svid", "alg": "ES256"})
    cases = []
    for workload, alg, to_jwk in (
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA", OKPAlgorithm.to_jwk),
        (ec.generate_private_key(ec.SECP256R1()), "ES256", ECAlgorithm.to_jwk),
    ):
        cnf = to_jwk(workload.public_key(), as_dict=True)
        cnf["alg"] = alg
        wit = jwt.encode(
            {"sub": inp["sub"], "iss": "https://py-issuer.example", "iat": now - 10, "exp": now + 3600,
             "jti": b64(secrets.token_bytes(16)), "cnf": {"jwk": cnf}, "locus_tee": {"type": "sev-snp"}},
            issuer, algorithm="ES256", headers={"typ": "wit+jwt", "kid": kid})
        wpt = jwt.encode(
            {"aud": inp["aud"], "exp": now + 60, "jti": b64(secrets.token_bytes(16)), "wth": token_hash(wit),
             "ath": token_hash(inp["access_token"])},
            workload, algorithm=alg, headers={"typ": "wpt+jwt"})
        cases.append({"wit": wit, "wpt": wpt})
    return {"jwks": {"keys": [issuer_jwk]}, "cases": cases}


if __name__ == "__main__":
    mode = sys.argv[1]
    data = json.load(sys.stdin)
    json.dump({"verify": verify, "sign": sign}[mode](data), sys.stdout)
