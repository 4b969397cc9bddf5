"""Fast-path client: hand a CNI request to the node agent over a unix socket.

Protocol (version 1), one request per connection:
  client -> agent: one JSON object {"v": 1, "env": {CNI_*...}, "stdin": "<config>"}
                   then shutdown(SHUT_WR) marks its end;
  agent -> client: one JSON object {"code": <exit code>, "stdout": "<plugin stdout>"}
                   then the agent closes the connection.
If the socket is absent or refuses the connection, the caller runs the request
itself (standalone mode).

Import-light: only the C modules ``_json`` and ``_socket``.  ``import json``
pulls in ``re``, ``enum`` and ``functools`` and costs ~8 ms under ``python -S``,
more than everything else the client does; ``socket`` costs ~8 ms for the same
reason.  The request is a flat object of strings, so ``_json``'s string encoder
and its C scanner (what ``json.loads`` uses underneath) are all we need.
"""

import _json
import _socket

TYPE_CHECKING = False  # `typing` itself costs ~2 ms to import
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_SOCKET = "/run/policyc/cni.sock"
ENV_SOCKET = "POLICYC_CNI_SOCKET"
PROTOCOL = 1
# ADD may wait a bounded time for the agent (it programs the pod's rules first).
TIMEOUT_S = 60.0
ERR_TRY_AGAIN_LATER = 11
ERR_INVALID_CONFIG = 7
# The agent reads at most this many bytes of request; a larger one is refused
# here, with a clear message, instead of being cut off mid-send.
MAX_REQUEST = 4 << 20

_quote = _json.encode_basestring_ascii  # what json.dumps uses for str


class _Decoder:
    """The attributes ``_json.make_scanner`` reads from a ``json.JSONDecoder``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # "NaN", "Infinity", "-Infinity"


_scan = _json.make_scanner(_Decoder())  # type: ignore[arg-type]


def loads(text: str) -> object:
    """``json.loads`` for one JSON value (trailing data is ignored)."""
    start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        value, _ = _scan(text, start)
    except StopIteration as exc:
        raise ValueError(f"no JSON value at {exc.value}") from None
    return value


def dumps_request(env: "Mapping[str, str]", stdin: str) -> bytes:
    pairs = ",".join(f"{_quote(k)}:{_quote(v)}" for k, v in env.items())
    return f'{{"v":{PROTOCOL},"env":{{{pairs}}},"stdin":{_quote(stdin)}}}'.encode()


def socket_path(environ: "Mapping[str, str]", stdin: bytes) -> str:
    """POLICYC_CNI_SOCKET, else the config's ``agentSocket``, else the default."""
    if environ.get(ENV_SOCKET):
        return environ[ENV_SOCKET]
    if b"agentSocket" in stdin:
        try:
            doc = loads(stdin.decode())
            value = doc.get("agentSocket") if isinstance(doc, dict) else None
        except (ValueError, RecursionError):  # UnicodeDecodeError too
            value = None
        if isinstance(value, str) and value:
            return value
    return DEFAULT_SOCKET


def _error(msg: str, details: str, code: int = ERR_TRY_AGAIN_LATER) -> str:
    return (
        f'{{"cniVersion": "1.1.0", "code": {code}, '
        f'"msg": {_quote(msg)}, "details": {_quote(details)}}}'
    )


def call(
    path: str,
    environ: "Mapping[str, str]",
    stdin: bytes,
    timeout: float = TIMEOUT_S,
) -> "tuple[int, str] | None":
    """Run the request in the agent; None means "no agent: go standalone"."""
    try:
        text = stdin.decode()
    except UnicodeDecodeError:
        return None  # let the standalone path report the decode error
    request = dumps_request({k: v for k, v in environ.items() if k.startswith("CNI_")}, text)
    if len(request) > MAX_REQUEST:
        # SPEC code 7, "Invalid network config": no configuration is megabytes long.
        msg = f"network configuration is {len(stdin)} bytes; the limit is {MAX_REQUEST}"
        return 1, _error(msg, "", ERR_INVALID_CONFIG)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            return None
        except OSError as exc:
            return ERR_TRY_AGAIN_LATER, _error("cannot reach the policyc agent", str(exc))
        try:
            sock.sendall(request)
            sock.shutdown(_socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            reply = loads(b"".join(chunks).decode())
            if not isinstance(reply, dict):
                raise ValueError("the reply is not a JSON object")
            return int(reply["code"]), str(reply["stdout"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # The agent may have done part of the work: the runtime should retry
            # (after its DEL), not have us redo it in-process.
            return ERR_TRY_AGAIN_LATER, _error("the policyc agent failed mid-request", str(exc))
    finally:
        sock.close()
