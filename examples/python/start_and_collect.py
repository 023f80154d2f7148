#!/usr/bin/env python3
"""Drive an NvDinoPipeline deployment from Python over plain AMQP (pika), no .NET involved.

    start_and_collect.py start   --train s3://data/train.tar.gz --test s3://data/test.tar.gz \
                                 --results-queue my-results --set train.num_epochs=3
    start_and_collect.py collect --results-queue my-results --out embeddings.jsonl

`start` sends a plain JSON StartPipeline (content type application/json, its type in the MT-MessageType header) to
the orchestrator's queue and prints the pipeline id. The spec holds only the keys given with --set; the orchestrator
merges them over its templates. The product declares the results queue durable when it accepts the pipeline, so
`collect` may run at any time later: it reads every EmbeddingsBatch waiting there (one JSON line per embedding, each
once), stops at the pipeline's final event and exits 0 when that is PipelineCompleted.
"""
import argparse
import datetime
import json
import sys
import uuid

import pika

CONTRACTS = "urn:message:NvDinoPipeline.Contracts:"
FINAL = ("PipelineCompleted", "PipelineFailed", "PipelineCanceled")


def overrides(pairs):
    """train.num_epochs=3 -> {"train": {"num_epochs": 3}}; values are JSON when they parse as JSON, else strings."""
    spec = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key:
            raise SystemExit(f"--set takes key=value, e.g. train.num_epochs=3; got {pair!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        node = spec
        *sections, leaf = key.split(".")
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = value
    return spec


def start(channel, args):
    pipeline_id = str(uuid.uuid4())
    message = {
        "pipelineId": pipeline_id,
        "trainDataUri": args.train,
        "testDataUri": args.test,
        "spec": overrides(args.set),
        "resultsQueue": args.results_queue,
        "name": args.name,
        "requestedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    channel.confirm_delivery()
    try:
        channel.basic_publish(
            exchange="",
            routing_key=args.orchestrator_queue,
            body=json.dumps(message),
            properties=pika.BasicProperties(
                content_type="application/json",
                delivery_mode=2,
                message_id=pipeline_id,
                headers={"MT-MessageType": CONTRACTS + "StartPipeline"},
            ),
            mandatory=True,
        )
    except pika.exceptions.UnroutableError:
        print(f"no queue {args.orchestrator_queue} on this broker: is nvdino serve (or the orchestrator) running against it?",
              file=sys.stderr)
        return 1
    print(pipeline_id)
    return 0


def collect(channel, args):
    try:
        channel.queue_declare(args.results_queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker:
        print(f"no queue {args.results_queue} on this broker: the product declares it when it accepts the pipeline "
              f"that names it; check the name, or that the start was sent to this broker", file=sys.stderr)
        return 1
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    seen = set()
    final = None
    for method, properties, body in channel.consume(args.results_queue, inactivity_timeout=args.timeout):
        if method is None:
            print(f"nothing arrived on {args.results_queue} for {args.timeout} s", file=sys.stderr)
            return 2
        kind = (properties.headers or {}).get("MT-MessageType", "").split(";")[0].removeprefix(CONTRACTS)
        message = json.loads(body)
        if kind == "EmbeddingsBatch":
            for item in message["items"]:
                if item["key"] not in seen:  # delivery is at least once: a batch may come twice
                    seen.add(item["key"])
                    out.write(json.dumps({"input_path": item["inputPath"], "embedding": item["embedding"]}) + "\n")
        elif kind in FINAL:
            final = (kind, message)
        channel.basic_ack(method.delivery_tag)
        if final:
            break
    channel.cancel()
    if out is not sys.stdout:
        out.close()
    kind, message = final
    print(json.dumps({"event": kind, "embeddings": len(seen), "message": message}), file=sys.stderr)
    return 0 if kind == "PipelineCompleted" else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/", help="broker URI")
    commands = parser.add_subparsers(dest="command", required=True)
    begin = commands.add_parser("start", help="start a pipeline, print its id")
    begin.add_argument("--train", required=True, help="training images: file:// or s3:// archive, folder or prefix")
    begin.add_argument("--test", help="images to embed once the model is deployed")
    begin.add_argument("--set", action="append", default=[], help="spec override key=value (repeatable)")
    begin.add_argument("--results-queue", required=True)
    begin.add_argument("--name")
    begin.add_argument("--orchestrator-queue", default="pipeline-orchestrator")
    read = commands.add_parser("collect", help="read the results queue until the pipeline's final event")
    read.add_argument("--results-queue", required=True)
    read.add_argument("--out", help="JSON lines file (default: standard output)")
    read.add_argument("--timeout", type=float, default=600, help="seconds to wait for the next message")
    args = parser.parse_args()

    broker = pika.URLParameters(args.amqp)
    try:
        connection = pika.BlockingConnection(broker)
    except pika.exceptions.AMQPConnectionError as error:
        print(f"cannot connect to the broker of --amqp ({broker.host}:{broker.port}): {error!r}", file=sys.stderr)
        return 1
    try:
        return (start if args.command == "start" else collect)(connection.channel(), args)
    finally:
        connection.close()


if __name__ == "__main__":
    sys.exit(main())
