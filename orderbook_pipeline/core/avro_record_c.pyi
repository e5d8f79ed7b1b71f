# Types of the compiled encoder (avro_record_c.pyx).

class Program:
    def __init__(
        self, ops: bytes, enums: tuple[dict[str, bytes] | None, ...], names: tuple[str, ...]
    ) -> None: ...
    def __call__(self, prefix: bytes, *values: object, **named: object) -> bytes: ...
