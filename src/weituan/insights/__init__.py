"""Insights: reports over the analytics store, dashboards, exports and API."""
