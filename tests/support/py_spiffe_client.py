"""py-spiffe against `locus-agent run --spiffe-socket` (run by tests/tests/spiffe_live.rs).

Usage: py_spiffe_client.py SOCKET TRUST_DOMAIN AUDIENCE
Fetches an X.509-SVID, the X.509 bundles, a JWT-SVID for AUDIENCE and the JWT bundles with py-spiffe's Workload
API client; checks with `cryptography` that the SVID's leaf is signed by a CA of the bundle and is valid now, and with
py-spiffe that the JWT-SVID validates against the JWT bundle. Prints one JSON object with what it found; exits non-zero
on any failure.

gRPC core (Python, C++, since 1.57) sends the percent-encoded socket path as the HTTP/2 `:authority` of a Unix-socket
channel; the agent's HTTP/2 stack (h2, under tonic) refuses that as a malformed authority (RFC 9113 §8.3.1) and resets
the stream. The client below sets the authority to `localhost`, as grpc-go and grpc-core before 1.57 do
(grpc/grpc#38142, hyperium/h2#487); docs/agent.md says so.
"""

import datetime
import json
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
import grpc
from spiffe import JwtSvid, TrustDomain, WorkloadApiClient
from spiffe.workloadapi import workload_api_client as wac


class LocalhostAuthorityClient(WorkloadApiClient):
    """py-spiffe's client with `:authority` `localhost` on its Unix-socket channel (see the module docs)."""

    def _get_spiffe_grpc_channel(self):
        target = self._grpc_target(self._config.spiffe_endpoint_socket)
        channel = grpc.insecure_channel(target, options=[("grpc.default_authority", "localhost")])
        header = wac.header_manipulator_client_interceptor.header_adder_interceptor(
            wac.WORKLOAD_API_HEADER_KEY, wac.WORKLOAD_API_HEADER_VALUE
        )
        return grpc.intercept_channel(channel, header)


def chains_to(leaf, authorities):
    """True when a CA of `authorities` signed `leaf` (ECDSA, the leaf's own signature hash)."""
    for ca in authorities:
        if ca.subject != leaf.issuer:
            continue
        try:
            ca.public_key().verify(
                leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm)
            )
            return True
        except Exception:  # noqa: BLE001 - another CA of the same name
            continue
    return False


def main():
    socket, trust_domain, audience = sys.argv[1], sys.argv[2], sys.argv[3]
    td = TrustDomain(trust_domain)
    with LocalhostAuthorityClient(socket_path="unix://" + socket, default_timeout=60) as client:
        svid = client.fetch_x509_svid()
        bundles = client.fetch_x509_bundles()
        jwt = client.fetch_jwt_svid(audience={audience})
        jwt_bundles = client.fetch_jwt_bundles()
    x509_bundle = bundles.get_bundle_for_trust_domain(td)
    jwt_bundle = jwt_bundles.get_bundle_for_trust_domain(td)
    leaf = svid.leaf
    now = datetime.datetime.now(datetime.timezone.utc)
    validated = JwtSvid.parse_and_validate(jwt.token, jwt_bundle, {audience})
    key_der = svid.private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    print(json.dumps({
        "x509_spiffe_id": str(svid.spiffe_id),
        "chain_len": len(svid.cert_chain),
        "chains_to_bundle": chains_to(leaf, x509_bundle.x509_authorities),
        "valid_now": leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc,
        "x509_key_point": key_der.hex(),
        "bundle_authorities": len(x509_bundle.x509_authorities),
        "jwt_spiffe_id": str(validated.spiffe_id),
        "jwt_audience": sorted(validated.audience),
        "jwt_bundle_keys": len(jwt_bundle.jwt_authorities),
    }))


if __name__ == "__main__":
    main()
