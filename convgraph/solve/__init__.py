"""The solve stage: exact valid/tiling size sets, merge verdicts and verified fixes, computed once per
graph (``solve(graph) -> Solution``), and the one size picker the later stages draw sizes from."""
from convgraph.solve._sets import PAIR_SPAN  # noqa: F401
from convgraph.solve._solve import (  # noqa: F401
    Coupling,
    Fix,
    Merge,
    Solution,
    SymbolSizes,
    Tiling,
    solve,
    tilings,
)
from convgraph.solve.sizes import check_sizes  # noqa: F401
