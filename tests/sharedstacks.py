"""Stacks that more than one test module checks, brought up once per run.

A module-scoped fixture imported into a second module is a second instance (pytest scopes it to each module),
so a user-path module (tests/e2e/test_user_paths_*.py) brought up again the compose topology or the KubeRay
cluster of the module it extends: minutes each. A fixture marked @shared is made once, whichever module asks
first, and taken down as soon as the next test does not use it (a session fixture would stay up, idle Ray
nodes and all, to the end of the run). tests/e2e/conftest.py orders the tests so that every user of a stack
runs next to the others (user_paths_first) and takes the stacks down (close_unused).

Run alone, each module still brings up the stacks it uses itself.
"""

import inspect

import pytest

_live = {}  # fixture name -> ("up", generator or None, value) or ("failed", None, exception)


def shared(func):
    """Like @pytest.fixture for a fixture whose value is a stack (a generator function with its teardown after
    the yield, or a plain function): the one stack for every test of the run that uses it by this name, until a
    test that does not use it comes next. A stack that failed to come up fails each of its users in turn,
    without trying again, as a module fixture's error does."""
    name = func.__name__

    def fixture(*args, **kwargs):
        if name not in _live:
            try:
                if inspect.isgeneratorfunction(func):
                    gen = func(*args, **kwargs)
                    _live[name] = ("up", gen, next(gen))
                else:
                    _live[name] = ("up", None, func(*args, **kwargs))
            except Exception as exc:
                _live[name] = ("failed", None, exc)
        state, _, value = _live[name]
        if state == "failed":
            raise value
        return value

    # Not functools.wraps: pytest unwraps __wrapped__ and would call `func` itself. The signature is what
    # pytest reads the fixture's own fixtures from.
    fixture.__name__, fixture.__qualname__, fixture.__doc__ = name, func.__qualname__, func.__doc__
    fixture.__module__, fixture.__signature__ = func.__module__, inspect.signature(func)
    fixture.shared_stack = True
    return pytest.fixture(fixture)


def stacks_of(item):
    """The names of the shared stacks `item` uses (a name such as `cluster` may be another module's own fixture:
    the definition in force for the item decides)."""
    defs = item._fixtureinfo.name2fixturedefs
    return {name for name in item.fixturenames
            if name in defs and getattr(defs[name][-1].func, "shared_stack", False)}


def close_unused(nextitem):
    """Take down, latest first, every stack that `nextitem` (None: the run ends) does not use."""
    keep = stacks_of(nextitem) if nextitem is not None else set()
    errors = []
    for name in reversed(list(_live)):
        if name in keep:
            continue
        _, gen, _ = _live.pop(name)
        if gen is not None:
            try:
                next(gen, None)  # runs the teardown after the yield
            except Exception as exc:  # the other stacks still go down; the first failure is reported
                errors.append(exc)
    if errors:
        raise errors[0]


def user_paths_first(items):
    """Reorder `items` in place: the tests of a user-path module that use a shared stack run right before the
    first test of another module that uses it (that module's later tests stop parts of its stack, e.g. a
    worker's machine vanishes), so the stack is up once for all of them."""
    def module(item):
        return item.nodeid.split("::", 1)[0]

    for name in sorted(set().union(*map(stacks_of, items))):
        users = [i for i in items if name in stacks_of(i)]
        movers = [i for i in users if "/test_user_paths_" in "/" + module(i)]
        owners = [i for i in users if i not in movers]
        if not movers or not owners:
            continue
        for i in movers:
            items.remove(i)
        at = items.index(owners[0])
        items[at:at] = movers
