"""CEL validation rules (`x-kubernetes-validations`) of CRD schemas, evaluated with cel-expr-python (cel-cpp).

`ast` reads a compiled rule's checked tree, `libraries` holds upstream's Kubernetes CEL functions, `compiler` the
environment and error wording, `cost` the static and runtime cost estimates, `rules` compiles a schema's rules
into a tree once, `validator` runs it against objects and `check` validates the rules of a CRD.
"""

from tmc.apimachinery.cel.check import check_rules
from tmc.apimachinery.cel.validator import CelValidator

__all__ = ["CelValidator", "check_rules"]
