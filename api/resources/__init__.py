"""The operational resources (agents, policyholders, policies, videos, knowledge base, WhatsApp
templates): one generic set of list / read / create / update / delete operations (`crud`),
configured per resource (`catalogue`)."""
