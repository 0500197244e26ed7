#!/usr/bin/python3
"""
TLS helpers for the integration tests (test_tls.py, test_dns.py).

As a module:
  * make_pki(dir): certificates made with the `openssl` CLI (EC P-256, fast): two independent
    server CAs, a client CA, server certificates for DNS:localhost,DNS:feed.test,IP:127.0.0.1
    signed by each server CA, an expired one (valid 2020-01-01..02, made with `openssl ca`), one
    without the IP in its names, and a client certificate for mTLS.
  * fixtures `pki` (session) and `tls_server` (factory), imported by the test modules (conftest.py
    belongs to someone else): tls_server(cert=..., key=..., client_ca=None, *pyserver_args).
  * wss_url(srv, host, path).

As a script (`/usr/bin/python3 tls_helpers.py --cert C --key K [--client-ca CA] [pyserver
options]`): tests/integration/pyserver.py's recording WebSocket server (same JSON event log,
same options) behind an ssl.SSLContext, with these extra events:

  {"t":..,"ev":"tls_sni","name":"feed.test"}                 SNI the client sent (null if none)
  {"t":..,"ev":"tls_alert","dir":"sent"|"recv","level":2,"desc":"UNKNOWN_CA","code":48}
  {"t":..,"ev":"tls","conn":1,"version":"TLSv1.3","sni":"feed.test","resumed":false,
                     "client_cert":{"subject":"wsbeat-client","issuer":"Client CA"}|null}

`tls` comes right after `accept`, which python-websockets only sees once the TLS handshake is
complete. A client that refuses the server's certificate shows up as a received alert (e.g.
UNKNOWN_CA, BAD_CERTIFICATE, CERTIFICATE_EXPIRED) and no `accept`.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_SANS = "DNS:localhost,DNS:feed.test,IP:127.0.0.1"

# ---------------------------------------------------------------------------------------------
# certificates

_CA_CNF = """\
[ ca ]
default_ca = tca
[ tca ]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}
serial = {dir}/serial
default_md = sha256
policy = pol
copy_extensions = none
unique_subject = no
[ pol ]
commonName = supplied
[ ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = {sans}
"""


def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed (%d):\n%s" % (
            " ".join(args), r.returncode, r.stderr.decode("utf-8", "replace")))
    return r.stdout.decode("utf-8", "replace")


_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _ca(d, name, cn):
    key, pem = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    _openssl("req", "-x509", *_EC, "-keyout", key, "-out", pem, "-days", "3650",
             "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return pem, key


def _leaf(d, name, cn, ca, ext_lines):
    key, csr, pem = (os.path.join(d, name + s) for s in (".key", ".csr", ".pem"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("\n".join(ext_lines) + "\n")
    _openssl("req", "-new", *_EC, "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
             "-days", "825", "-sha256", "-extfile", ext, "-out", pem)
    return pem, key


def _server_ext(sans):
    return ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
            "extendedKeyUsage=serverAuth", "subjectAltName=" + sans]


def _expired(d, name, cn, ca, sans):
    """Signed by ca, valid only 2020-01-01..2020-01-02 (`openssl ca` takes explicit dates)."""
    cadir = os.path.join(d, name + "-ca-db")
    os.makedirs(cadir, exist_ok=True)
    open(os.path.join(cadir, "index.txt"), "w").close()
    with open(os.path.join(cadir, "serial"), "w") as f:
        f.write("1000\n")
    cnf = os.path.join(cadir, "ca.cnf")
    with open(cnf, "w") as f:
        f.write(_CA_CNF.format(dir=cadir, sans=sans))
    key, csr, pem = (os.path.join(d, name + s) for s in (".key", ".csr", ".pem"))
    _openssl("req", "-new", *_EC, "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    _openssl("ca", "-batch", "-config", cnf, "-cert", ca[0], "-keyfile", ca[1], "-in", csr,
             "-out", pem, "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
             "-extensions", "ext", "-notext")
    return pem, key


class Pki:
    """Paths of everything make_pki() wrote; each cert is a (pem, key) pair."""

    def __init__(self, d):
        self.dir = d
        self.ca1 = _ca(d, "ca1", "wsbeat test CA 1")
        self.ca2 = _ca(d, "ca2", "wsbeat test CA 2")
        self.client_ca = _ca(d, "client-ca", "wsbeat client CA")
        self.server1 = _leaf(d, "server1", "localhost", self.ca1, _server_ext(SERVER_SANS))
        self.server2 = _leaf(d, "server2", "localhost", self.ca2, _server_ext(SERVER_SANS))
        self.no_ip = _leaf(d, "server-no-ip", "feed.test", self.ca1,
                           _server_ext("DNS:feed.test"))
        self.expired = _expired(d, "expired", "localhost", self.ca1, SERVER_SANS)
        self.client = _leaf(d, "client", "wsbeat-client", self.client_ca,
                            ["basicConstraints=critical,CA:FALSE",
                             "keyUsage=critical,digitalSignature",
                             "extendedKeyUsage=clientAuth"])

    def dates(self, pem):
        return _openssl("x509", "-in", pem, "-noout", "-dates")


def make_pki(d):
    os.makedirs(d, exist_ok=True)
    return Pki(str(d))


# ---------------------------------------------------------------------------------------------
# fixtures (imported into the test modules)

def _fixtures():
    import pytest
    from helpers import PYTHON, ServerProc

    @pytest.fixture(scope="session")
    def pki(tmp_path_factory):
        return make_pki(tmp_path_factory.mktemp("pki"))

    @pytest.fixture
    def tls_server():
        """Factory: tls_server(cert=(pem, key), client_ca=None, *pyserver_args, port=0)."""
        started = []

        def make(*args, cert, client_ca=None, port=0):
            argv = [PYTHON, "-u", os.path.abspath(__file__), "--cert", cert[0],
                    "--key", cert[1], "--port", str(port)]
            if client_ca:
                argv += ["--client-ca", client_ca]
            s = ServerProc(argv + [str(a) for a in args], "tls-pyserver")
            started.append(s)
            return s.start()

        yield make
        for s in started:
            s.kill()

    return pki, tls_server


def wss_url(srv, host="127.0.0.1", path="/"):
    return "wss://%s:%d%s" % (host, srv.port, path)


# ---------------------------------------------------------------------------------------------
# the TLS server (script mode)

def _serve(argv):
    import argparse
    import asyncio
    import resource
    import ssl

    import websockets

    sys.path.insert(0, HERE)
    import pyserver

    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca", help="require a client certificate signed by this CA")
    ours, rest = p.parse_known_args(argv)
    pyserver.ARGS = pyserver.parse_args(rest)
    emit = pyserver.emit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ours.cert, ours.key)
    if ours.client_ca:
        ctx.load_verify_locations(cafile=ours.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    sni_seen = {}

    def on_sni(sslobj, name, _ctx):
        sni_seen[id(sslobj)] = name
        emit("tls_sni", name=name)
        return None

    def on_msg(_conn, direction, _version, content_type, msg_type, data):
        if int(content_type) != 21 or len(data) < 2:  # 21: alert record
            return
        try:
            desc = ssl._TLSAlertType(data[1]).name
        except ValueError:
            desc = str(data[1])
        emit("tls_alert", dir="sent" if direction == "write" else "recv", level=data[0],
             code=data[1], desc=desc)

    ctx.sni_callback = on_sni
    ctx._msg_callback = on_msg  # the (documented-as-debug) hook of ssl.SSLContext

    def cn(name_tuple):
        for rdn in name_tuple or ():
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    class TlsRecordingProtocol(pyserver.RecordingProtocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            sslobj = transport.get_extra_info("ssl_object")
            peer = transport.get_extra_info("peercert")
            emit("tls", conn=self.conn_id,
                 version=sslobj.version() if sslobj else None,
                 resumed=sslobj.session_reused if sslobj else None,
                 sni=sni_seen.pop(id(sslobj), None) if sslobj else None,
                 client_cert=({"subject": cn(peer.get("subject")),
                               "issuer": cn(peer.get("issuer"))} if peer else None))

    async def main():
        server = await websockets.serve(
            pyserver.handler, "127.0.0.1", pyserver.ARGS.port, ssl=ctx,
            create_protocol=TlsRecordingProtocol,
            subprotocols=pyserver.ARGS.subprotocol or None,
            ping_interval=None, ping_timeout=None, compression=None,
            close_timeout=2, max_size=None, max_queue=None, reuse_address=True,
            backlog=4096)
        for sock in server.sockets:
            addr, port = sock.getsockname()[:2]
            emit("listening", addr=addr, port=port)
        await asyncio.Future()

    loop_exc = []

    def quiet(loop, context):  # refused handshakes are expected here: keep stderr short
        loop_exc.append(context.get("message"))

    async def run():
        asyncio.get_running_loop().set_exception_handler(quiet)
        await main()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    _serve(sys.argv[1:])
else:
    try:
        pki, tls_server = _fixtures()
    except ImportError:  # imported outside pytest
        pass
