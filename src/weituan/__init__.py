"""Weituan (微团): a micro-blog, group-buying deals and traffic-diversion measurement."""

__version__ = "0.1.0"
