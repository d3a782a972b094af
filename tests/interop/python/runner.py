"""The interop suite's Python client: grpcio (grpc-core, the core of the Ruby, PHP, C#
and C++ clients too) calling Patchbay as a platform service written in Python would.

Reads the plan the Rust harness wrote (tests/interop/main.rs), runs its cases one by
one, and prints one JSON line per case: the status code grpcio reports, its message,
the answers' bytes, the `x-request-id` it saw, and the BadRequest field violations as
grpcio-status decodes them. The harness checks every line. Then it opens the last
watch, says "ready", and reports how that watch ended once the server is stopped.

Requests and answers travel as the bytes the harness encoded, so each case tests
what grpcio does with the wire; the typed cases build their messages from the
server's own reflection, as the Python example of docs/api.md does.
"""

import base64
import json
import sys
import threading
import time

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

CLIENT = "python-grpcio " + grpc.__version__


def emit(line):
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def metadata_of(case):
    pairs = [(k, v) for k, v in case.get("metadata", {}).items()]
    if case.get("token"):
        pairs.append(("authorization", "Bearer " + case["token"]))
    return pairs


def violations_of(error):
    """The google.rpc.BadRequest field violations, decoded by grpcio-status."""
    status = rpc_status.from_call(error)
    if status is None:
        return None
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend([v.field, v.description] for v in bad.field_violations)
    return found


def request_id(call):
    for key, value in call.initial_metadata() or ():
        if key == "x-request-id":
            return value
    for key, value in call.trailing_metadata() or ():
        if key == "x-request-id":
            return value
    return None


def outcome(name, code, message, responses, rid=None, violations=None):
    return {
        "case": name,
        "client": CLIENT,
        "code": code.name,
        "message": message,
        "responses": [base64.b64encode(r).decode() for r in responses],
        "request_id": rid,
        "violations": violations,
    }


def run_case(channel, case):
    request = base64.b64decode(case["request"])
    timeout = (case.get("timeout_ms") or 120000) / 1000.0
    compression = grpc.Compression.Gzip if case.get("compress") else None
    metadata = metadata_of(case)
    responses = []
    if not case["stream"]:
        call = channel.unary_unary(case["method"])
        try:
            answer, state = call.with_call(
                request, timeout=timeout, metadata=metadata, compression=compression
            )
            return outcome(case["name"], state.code(), state.details() or "", [answer], request_id(state))
        except grpc.RpcError as error:
            return outcome(
                case["name"], error.code(), error.details() or "", [], request_id(error), violations_of(error)
            )
    call = channel.unary_stream(case["method"])(
        request, timeout=timeout, metadata=metadata, compression=compression
    )
    take = case.get("take")
    try:
        for answer in call:
            responses.append(answer)
            if take is not None and len(responses) >= take:
                call.cancel()
                return outcome(case["name"], grpc.StatusCode.OK, "", responses, request_id(call))
        return outcome(case["name"], call.code(), call.details() or "", responses, request_id(call))
    except grpc.RpcError as error:
        return outcome(
            case["name"], error.code(), error.details() or "", responses, None, violations_of(error)
        )


def first_message(channel, watch):
    """Opens a watch and waits for its first message: the call, or the error."""
    call = channel.unary_stream(watch["method"])(
        base64.b64decode(watch["request"]), timeout=120, metadata=metadata_of(watch)
    )
    try:
        next(call)
        return call, None
    except grpc.RpcError as error:
        return None, error


def watch_share(channel, plan):
    """The workspace's share of watches: the next one is refused, and a cancelled one
    gives its place back."""
    watch = plan["watch_share"]
    held = []
    # The watches of the cases above give their places back as the server notices
    # them gone: a place may take a moment to be free.
    deadline = time.monotonic() + 5
    while len(held) < watch["share"]:
        call, error = first_message(channel, watch)
        if error is None:
            held.append(call)
        elif time.monotonic() > deadline:
            return outcome("watch_share_filled", error.code(), error.details() or "", [])
        else:
            time.sleep(0.05)
    emit(outcome("watch_share_filled", grpc.StatusCode.OK, "", []))
    _, refused = first_message(channel, watch)
    emit(
        outcome(
            "watch_beyond_share",
            refused.code() if refused else grpc.StatusCode.OK,
            refused.details() if refused else "",
            [],
        )
    )
    held.pop().cancel()
    deadline = time.monotonic() + 5
    while True:
        call, error = first_message(channel, watch)
        if error is None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if call is not None:
        held.append(call)
    for call in held:
        call.cancel()
    return outcome(
        "watch_after_cancel",
        error.code() if error else grpc.StatusCode.OK,
        error.details() if error else "",
        [],
    )


def keepalive(plan):
    """An idle watch on a channel that pings every second keeps open for 5 s (no
    GOAWAY for too many pings) and then hears the next change."""
    case = plan["keepalive"]
    options = [
        ("grpc.keepalive_time_ms", 1000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    with grpc.insecure_channel(plan["target"], options=options) as channel:
        watch = case["watch"]
        call = channel.unary_stream(watch["method"])(
            base64.b64decode(watch["request"]), timeout=30, metadata=metadata_of(watch)
        )
        responses = []
        try:
            responses.append(next(call))
            time.sleep(5)
            change = case["change"]
            with grpc.insecure_channel(plan["target"]) as other:
                other.unary_unary(change["method"])(
                    base64.b64decode(change["request"]), timeout=10, metadata=metadata_of(change)
                )
            responses.append(next(call))
            call.cancel()
            return outcome("keepalive_idle_watch_hears_the_next_change", grpc.StatusCode.OK, "", responses)
        except grpc.RpcError as error:
            return outcome(
                "keepalive_idle_watch_hears_the_next_change", error.code(), error.details() or "", responses
            )


def typed(channel, plan):
    """The example of docs/api.md: message types from the server's reflection, no .proto at
    hand; then a bad request, its field violations read with grpcio-status."""
    typed = plan["typed"]
    metadata = [("authorization", "Bearer " + typed["token"])]
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    service = pool.FindServiceByName("patchbay.v1.AccountService")
    method = service.methods_by_name["GetDefaultAccount"]
    request_type = message_factory.GetMessageClass(method.input_type)
    answer_type = message_factory.GetMessageClass(method.output_type)
    get_default = channel.unary_unary(
        "/patchbay.v1.AccountService/GetDefaultAccount",
        request_serializer=request_type.SerializeToString,
        response_deserializer=answer_type.FromString,
    )
    request = json_format.ParseDict({"channel": "CHANNEL_EMAIL"}, request_type())
    answer = get_default(request, metadata=metadata, timeout=10)
    emit(
        outcome("typed_get_default_account", grpc.StatusCode.OK, "", [answer.SerializeToString()])
        | {"typed": json_format.MessageToDict(answer)}
    )
    try:
        get_default(request_type(), metadata=metadata, timeout=10)
        emit(outcome("typed_invalid_argument", grpc.StatusCode.OK, "", []))
    except grpc.RpcError as error:
        emit(outcome("typed_invalid_argument", error.code(), error.details() or "", [], None, violations_of(error)))


def main():
    with open(sys.argv[1]) as file:
        plan = json.load(file)
    keeper = None
    if plan.get("keepalive"):
        results = []
        keeper = threading.Thread(target=lambda: results.append(keepalive(plan)))
        keeper.start()
    with grpc.insecure_channel(plan["target"]) as channel:
        for case in plan["cases"]:
            emit(run_case(channel, case))
        emit(watch_share(channel, plan))
        typed(channel, plan)
        if keeper is not None:
            keeper.join()
            emit(results[0])
        final = plan["final"]
        call, error = first_message(channel, final)
        emit({"ready": True, "client": CLIENT})
        if error is None:
            try:
                for _ in call:
                    pass
                error_code, details = call.code(), call.details()
            except grpc.RpcError as ended:
                error_code, details = ended.code(), ended.details()
        else:
            error_code, details = error.code(), error.details()
        emit(outcome(final["name"], error_code, details or "", []))


if __name__ == "__main__":
    main()
