"""Connects with the Python driver by client certificate alone, the way an
application does against a Cassandra 5.0 node with MutualTlsAuthenticator (or
its password fallback): CERT_REQUIRED with hostname checking, the client
certificate and key, and no password. The server still sends AUTHENTICATE, so
the driver needs an auth provider; CertificateAuthProvider answers with an
empty token, which the certificate authenticator ignores (the identity comes
from the certificate's spiffe:// URI SAN).

Prints release_version=..., then who the server thinks we are: the error of a
query the role may not run names the user. Exits 1 with the driver's error
when the connection fails.

Usage: mtls_driver.py --host H --port P --ca F --cert F --key F
"""
import argparse
import sys
import ssl

from cassandra import Unauthorized
from cassandra.auth import AuthProvider, Authenticator
from cassandra.cluster import Cluster, NoHostAvailable


class CertificateAuthenticator(Authenticator):
    def initial_response(self):
        return b""


class CertificateAuthProvider(AuthProvider):
    def new_authenticator(self, host):
        return CertificateAuthenticator()


def main():
    p = argparse.ArgumentParser()
    for name in ("host", "port", "ca", "cert", "key"):
        p.add_argument("--" + name, required=True)
    a = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    ctx.load_verify_locations(a.ca)
    ctx.load_cert_chain(certfile=a.cert, keyfile=a.key)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    cluster = Cluster(
        [a.host], port=int(a.port), ssl_context=ctx, ssl_options={"server_hostname": a.host},
        auth_provider=CertificateAuthProvider(),
        protocol_version=4, connect_timeout=20, control_connection_timeout=20,
    )
    try:
        session = cluster.connect()
        version = session.execute("SELECT release_version FROM system.local").one()[0]
        print(f"release_version={version}")
        try:
            session.execute("SELECT role FROM system_auth.roles")
            print("system_auth.roles readable")
        except Unauthorized as e:
            print(f"unauthorized: {e}")
    except NoHostAvailable as e:
        for host, err in e.errors.items():
            print(f"error {host}: {err!r}")
        sys.exit(1)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
