"""The safety domain of the officers' service: rules as data, flags, the roll, the prisoner
summary, the establishment overview and cell-move checks.

Everything here reads the serving store (the mirror of the prison database, the person
resolution and linked history the sync keeps) with SQLAlchemy Core and returns plain dataclasses;
HTTP lives in ``justice.web.safety``. Modules, one concept each:

    rules.py       rules.yaml read and checked (flags, cell-move rules, severities)
    tables.py      the serving-store tables this package reads (declared by their owners)
    clock.py       the service's today: the date of the prison data's as-at time
    facts.py       what the store holds on a set of people that matters for safety
    flags.py       the flags a person carries (open ACCT, self-harm history, ...)
    locations.py   an establishment's wings, landings and cells, and who is in each
    roll.py        the wing and landing roll
    overview.py    the establishment overview
    summary.py     one prisoner's safety summary
    conflicts.py   the cell-move rules evaluated on one move in a given state of the prison
    cell_moves.py  single checks and decisions (tables move_checks, move_check_conflicts)
    batch.py       a plan of several moves checked as a whole
    evidence.py    which warnings led to a cancelled move
"""
