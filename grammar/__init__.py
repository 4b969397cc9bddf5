"""Lark grammars: Kubernetes label-selector expressions and the compact
policy language.  Both compile to the same model, hence the same IR."""
