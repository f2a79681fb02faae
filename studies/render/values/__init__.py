"""The named values each rendered document prints, one module per document, each computed
from the committed results files (`values() -> dict`, the template's namespace)."""
