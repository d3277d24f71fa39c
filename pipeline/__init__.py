"""newsletter-pipeline: a clinic's blog articles as a newsletter people are glad to get."""

from pipeline.errors import PipelineError

__version__ = "0.1.0"
__all__ = ["PipelineError", "__version__"]
