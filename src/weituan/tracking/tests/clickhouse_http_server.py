"""A ClickHouse HTTP interface on 127.0.0.1 that runs the SQL with chDB, so the HTTP store is tested end to end.

    python clickhouse_http_server.py <chdb dir> <port file> <user> <password>

It speaks the part of the interface a client relies on: the query in the POST body, or in the `query`
parameter with the body as the data of an INSERT; `database`, settings and `param_<name>` as URL
parameters; basic auth or X-ClickHouse-User/-Key; the output format named by the query's FORMAT
clause (TabSeparated by default); on failure a non-200 status, the `Code: N. DB::Exception: ...` text
and the X-ClickHouse-Exception-Code header. One chDB connection, one statement at a time.
"""

import base64
import json
import re
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb

_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_CODE = re.compile(r"Code:\s*(\d+)")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The HTTP statuses ClickHouse gives the exceptions a client is likely to meet; the rest are 500.
_STATUS = {62: 400, 27: 400, 36: 400, 47: 400, 60: 404, 81: 404, 516: 401}


class ClickHouseError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class Engine:
    def __init__(self, path: str):
        self.conn: Any = chdb.connect(path)
        self.lock = threading.Lock()

    def run(
        self, sql: str, data: bytes, database: str, settings: dict[str, str], params: dict[str, str]
    ) -> tuple[bytes, str]:
        with self.lock:
            try:
                self.conn.query(f"USE {database}")
                for name, value in settings.items():
                    if not _NAME.match(name):
                        raise ClickHouseError(
                            115, f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)"
                        )
                    self.conn.query(f"SET {name} = '{value.replace(chr(39), chr(92) + chr(39))}'")
                match = _FORMAT.search(sql)
                fmt = match.group(1) if match else "TabSeparated"
                statement = sql[: match.start()] if match else sql
                if data and statement.lstrip().upper().startswith("INSERT"):
                    with self.conn.send_insert(statement, fmt) as inserter:
                        inserter.append(data)
                        inserter.finish()
                    return b"", fmt
                if data:
                    statement = f"{statement}\n{data.decode()}"
                result = self.conn.query(statement, fmt, params=params or None)
                return bytes(result.bytes()), fmt
            except ClickHouseError:
                raise
            except Exception as exc:
                text = str(exc)
                found = _CODE.search(text)
                code = int(found.group(1)) if found else 1000
                if not found:
                    text = f"Code: {code}. DB::Exception: {text}"
                raise ClickHouseError(code, text) from exc


def handler_for(engine: Engine, user: str, password: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _credentials(self, params: dict[str, str]) -> tuple[str, str]:
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                name, _, secret = base64.b64decode(header[6:]).decode().partition(":")
                return name, secret
            if "X-ClickHouse-User" in self.headers:
                return self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
            return params.pop("user", "default"), params.pop("password", "")

        def do_POST(self) -> None:
            query_id = uuid.uuid4().hex
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                if self._credentials(params) != (user, password):
                    raise ClickHouseError(
                        516,
                        f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, "
                        "or there is no user with such name. (AUTHENTICATION_FAILED)",
                    )
                sql = params.pop("query", None)
                data = b""
                if sql is None:
                    sql = body.decode()
                else:
                    data = body
                database = params.pop("database", "default")
                query_params = {
                    name[6:]: value for name, value in params.items() if name.startswith("param_")
                }
                settings = {name: value for name, value in params.items() if not name.startswith("param_")}
                output, fmt = engine.run(sql, data, database, settings, query_params)
            except ClickHouseError as exc:
                message = (str(exc).strip() + "\n").encode()
                self.send_response(_STATUS.get(exc.code, 500))
                self.send_header("Content-Type", "text/plain; charset=UTF-8")
                self.send_header("X-ClickHouse-Query-Id", query_id)
                self.send_header("X-ClickHouse-Exception-Code", str(exc.code))
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                self.wfile.write(message)
                return
            self.send_response(200)
            self.send_header(
                "Content-Type", "application/json; charset=UTF-8" if "JSON" in fmt else "text/plain"
            )
            self.send_header("X-ClickHouse-Query-Id", query_id)
            self.send_header("X-ClickHouse-Format", fmt)
            self.send_header("X-ClickHouse-Summary", json.dumps({"read_rows": "0", "written_rows": "0"}))
            self.send_header("Content-Length", str(len(output)))
            self.end_headers()
            self.wfile.write(output)

        def do_GET(self) -> None:
            # GET / is the health check ("Ok."); read-only queries over GET are not needed by the store.
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"Ok.\n")

    return Handler


def main() -> None:
    path, port_file, user, password = sys.argv[1:5]
    engine = Engine(path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(engine, user, password))
    with open(port_file, "w") as handle:
        handle.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
