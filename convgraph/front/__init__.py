"""Front ends: the text DSL, the Python builder, and the layer catalogue (PyTorch's constructor
signatures, canonicalised once into IR specs) that both share."""
