"""The join benchmarks written with Quix Streams (bench/bench_joins.py runs it in
bench/.venv-quix): `join_asof` for the stream-table join (the latest customer row at or before
each order's time), `join_interval` for the stream-stream join (purchases within 5 s of a click).

    python bench/quix_joins.py BOOTSTRAP LEFT RIGHT OUTPUT GROUP {stream-table,stream-stream}
"""

import sys

from quixstreams import Application


def main() -> None:
    bootstrap, left, right, output, group, case = sys.argv[1:7]
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=0.25,
        state_dir=f"/tmp/quix-state-{group}",
        loglevel="WARNING",
    )
    out = app.topic(output, value_serializer="json")
    left_sdf = app.dataframe(app.topic(left, value_deserializer="json"))
    right_sdf = app.dataframe(app.topic(right, value_deserializer="json"))
    if case == "stream-table":
        joined = left_sdf.join_asof(right_sdf, how="left", on_merge="keep-left")
        joined = joined.apply(
            lambda v: {
                "order_id": v["order_id"],
                "amount": v["amount"],
                "customer_name": v.get("name"),
                "tier": v.get("tier"),
            }
        )
    elif case == "stream-stream":
        joined = left_sdf.join_interval(
            right_sdf,
            how="inner",
            on_merge="keep-left",
            grace_ms=6_000,  # Quix refuses a grace shorter than backward_ms
            backward_ms=5_000,
            forward_ms=5_000,
        )
        joined = joined.apply(lambda v: {"page": v["page"], "item": v["item"]})
    else:
        raise SystemExit(f"unknown case {case}")
    joined.to_topic(out)
    app.run()


if __name__ == "__main__":
    main()
