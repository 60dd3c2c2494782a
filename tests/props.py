"""What every property test asserts of a parser of outside data: it returns, or it raises our one error type
(BootError) as one line; nothing else escapes. Strategies shared by the test_props_*.py files."""

import string

from hypothesis import strategies as st

from seedcore_boot.errors import BootError


def result_or_boot_error(fn, *args, **kwargs):
    """fn's result, or the BootError it raised (one line); any other exception fails the test."""
    try:
        return fn(*args, **kwargs)
    except BootError as exc:
        assert "\n" not in str(exc), f"a BootError of more than one line: {exc!r}"
        return exc


# Text as machines and users write it: mostly printable ASCII, sometimes anything at all.
ascii_text = st.text(alphabet=string.printable, max_size=20)
any_text = st.one_of(ascii_text, st.text(max_size=20))

# YAML/JSON-like values: what a settings or config file can hold after a safe load.
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), any_text, st.dates(), st.datetimes(),
                    st.binary(max_size=8))
nested = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.one_of(any_text, st.integers()), inner,
                                                                      max_size=4)), max_leaves=12)
