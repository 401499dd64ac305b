from __future__ import annotations

from dataclasses import asdict

from memory_proxy.records.usage import FIELD_NAMES, UsageRecord


def test_a_records_dict_is_its_fields_in_order_and_its_own() -> None:
    record = UsageRecord(
        1.5,
        "r1",
        "u",
        None,
        "c",
        "m",
        "/v1/chat/completions",
        200,
        False,
        1.0,
        0.5,
        2.0,
        3,
        4,
        None,
    )
    fields = record.as_dict()
    assert fields == asdict(record) and tuple(fields) == FIELD_NAMES
    del fields["time"]  # the log line drops it: the record keeps it
    assert record.time == 1.5
    assert UsageRecord.from_dict(record.as_dict()) == record
