"""The bronze lanes, one module each: a lane's fields, keys, order, stream and functions are
defined once there, and its Avro schema, Arrow schema, compaction rule, asset and checks are
derived from that definition (spec.py). registry.py collects them.

This package imports nothing itself, so that core/ can import its leaf modules (avro_types.py)
without pulling in the lane modules, which import core/."""
