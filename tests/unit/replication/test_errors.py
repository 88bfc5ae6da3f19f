from kio.schema.errors import ErrorCode

from suoi.replication import Err


def test_codes_match_kafka() -> None:
    for err in Err:
        assert ErrorCode[err.name.lower()].value == err.value
