"""The campaign calendar as Prefect flows. Each flow is a composition of tasks/ over models/ rules."""
