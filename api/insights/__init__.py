"""The insights API: marts and model outputs served to agents, admins and analysts (issue 8)."""
