#!/usr/bin/env python3
"""Registers the benchmark application `bench-shop` (an event API with order.created.v1, client
credentials) on a running eventplane, and writes what the benchmarks publish with into WORK:
`token` (an access token), and `head`/`tail` (a 1 KiB structured CloudEvent split around its
id).

    scripts/bench-register.py PORT ADMIN_TOKEN WORK
"""
import base64, json, pathlib, sys, urllib.request, urllib.parse

port, admin, work = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
base = f"http://127.0.0.1:{port}"

def post(path, body, headers):
    request = urllib.request.Request(base + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")

def gql(query, variables):
    status, body = post("/graphql", json.dumps({"query": query, "variables": variables}).encode(),
                        {"authorization": f"Bearer {admin}", "content-type": "application/json"})
    if status != 200 or body.get("errors"):
        sys.exit(f"GraphQL failed ({status}): {body}")
    return body["data"]

spec = {
    "asyncapi": "2.6.0",
    "info": {"title": "Bench shop", "version": "1.0.0"},
    "channels": {"order.created.v1": {"subscribe": {"message": {"payload": {
        "type": "object", "required": ["orderId"],
        "properties": {"orderId": {"type": "string"}, "total": {"type": "number"},
                       "currency": {"type": "string", "enum": ["EUR", "USD"]},
                       "note": {"type": "string"}}}}}}},
}
app = gql("mutation { createApplication(in: {name: \"bench-shop\"}) { id } }", {})["createApplication"]["id"]
gql("mutation($app: ID!, $in: EventAPIDefinitionInput!) { addEventAPI(applicationID: $app, in: $in) { id } }",
    {"app": app, "in": {"name": "orders", "spec": {"data": json.dumps(spec), "eventSpecType": "ASYNC_API", "format": "JSON"}}})
creds = gql("mutation($app: ID!) { requestClientCredentialsForApplication(applicationID: $app) { clientId clientSecret } }",
            {"app": app})["requestClientCredentialsForApplication"]
basic = base64.b64encode(f"{creds['clientId']}:{creds['clientSecret']}".encode()).decode()
status, token = post("/oauth/token", b"grant_type=client_credentials",
                     {"authorization": f"Basic {basic}", "content-type": "application/x-www-form-urlencoded"})
if status != 200:
    sys.exit(f"token request failed ({status}): {token}")
(work / "token").write_text(token["access_token"])

# A 1 KiB event (with an id of the length the benchmark generates), split around its id.
marker = "@@ID@@"
def event(pad):
    return json.dumps({"specversion": "1.0", "id": marker, "source": "/applications/bench-shop",
                       "type": "order.created.v1", "time": "2025-06-01T12:00:00Z",
                       "datacontenttype": "application/json",
                       "data": {"orderId": "ord-12345", "total": 99.5, "currency": "EUR", "note": "x" * pad}},
                      separators=(",", ":"))
typical_id = "r1-c16-1-1000000"
pad = 1024 - len(event(0).replace(marker, typical_id))
head, tail = event(pad).split(marker)
assert len(head) + len(typical_id) + len(tail) == 1024
(work / "head").write_text(head)
(work / "tail").write_text(tail)
print(f"event: {len(head) + len(typical_id) + len(tail)} bytes")
