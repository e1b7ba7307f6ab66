"""Connects with the DataStax/Apache Python driver the way the README tells a
client of a managed Cassandra service to: the service's CA as the only trust
anchor, CERT_REQUIRED with hostname checking (ssl.PROTOCOL_TLS_CLIENT), the
self-signed client certificate and key from `certs self-signed`, and a
password. --server-hostname checks the certificate against that name while
connecting to --host (an IP): the driver passes ssl_options to wrap_socket.

Prints release_version=... and exits 0, or prints the driver's error and
exits 1.

Usage: managed_driver.py --host H --port P --ca F --cert F --key F
                         --user U --password-file F [--server-hostname N]
"""
import argparse
import ssl
import sys

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable


def main():
    p = argparse.ArgumentParser()
    for name in ("host", "port", "ca", "cert", "key", "user", "password-file"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--server-hostname")
    a = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    ctx.load_verify_locations(a.ca)
    ctx.load_cert_chain(certfile=a.cert, keyfile=a.key)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    with open(a.password_file) as f:
        password = f.read().rstrip("\n")
    kwargs = {}
    if a.server_hostname:
        kwargs["ssl_options"] = {"server_hostname": a.server_hostname}
    cluster = Cluster(
        [a.host], port=int(a.port), ssl_context=ctx,
        auth_provider=PlainTextAuthProvider(username=a.user, password=password),
        protocol_version=4, connect_timeout=20, control_connection_timeout=20, **kwargs,
    )
    try:
        session = cluster.connect()
        version = session.execute("SELECT release_version FROM system.local").one()[0]
        print(f"release_version={version}")
    except NoHostAvailable as e:
        for host, err in e.errors.items():
            print(f"error {host}: {err!r}")
        sys.exit(1)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
