"""The same queries written with Quix Streams, for the side-by-side benchmark.

Runs in its own virtual environment (bench/.venv-quix, made by bench_runtime.py): Quix Streams
pins older confluent-kafka and pydantic releases than StreamHouse uses.

    python bench/quix_app.py BOOTSTRAP INPUT OUTPUT GROUP {filter,projection,tumbling}
"""

import sys

from quixstreams import Application


def main() -> None:
    bootstrap, source, output, group, query = sys.argv[1:6]
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=0.25,
        state_dir=f"/tmp/quix-state-{group}",
        loglevel="WARNING",
    )
    # Event time from the record, as StreamHouse reads it from `created_at`.
    topic = app.topic(
        source,
        value_deserializer="json",
        timestamp_extractor=lambda value, headers, timestamp, kind: value["created_at"],
    )
    out = app.topic(output, value_serializer="json")
    sdf = app.dataframe(topic)
    if query == "filter":
        sdf = sdf[sdf["amount"] > 1000]
    elif query == "projection":
        sdf = sdf.apply(
            lambda v: {
                "order_id": v["order_id"],
                "customer_id": v["customer_id"],
                "fee": round(v["amount"] * 0.03, 4),
            }
        )
    elif query in ("tumbling", "tumbling-keyed"):
        if query == "tumbling":
            sdf = sdf.group_by("customer_id")  # the keyed variant is keyed by customer already
        sdf = (
            sdf.tumbling_window(duration_ms=60_000)
            .reduce(lambda acc, v: [acc[0] + 1, acc[1] + v["amount"]], lambda v: [1, v["amount"]])
            .final()
        )
    else:
        raise SystemExit(f"unknown query {query}")
    sdf.to_topic(out)
    app.run()


if __name__ == "__main__":
    main()
