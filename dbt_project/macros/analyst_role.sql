{#
    The read-only analyst role (least privilege): it may read the marts and nothing else.

    - on-run-start, `create_analyst_role()`: creates the role, NOLOGIN, when it does not exist.
      People log in as their own roles and are granted membership (`grant analyst to alice`).
      Creating a role needs the CREATEROLE attribute (or a superuser) on the dbt user; a dbt user
      without it works as long as the role already exists (a DBA ran `create role analyst
      nologin` once), and otherwise fails with a message that says so. Roles are cluster-wide:
      one role serves every warehouse database of the server, and concurrent runs on two
      databases may both try to create it, which is not an error.
    - `+grants: {select: [analyst]}` under `marts` in dbt_project.yml: dbt grants SELECT on every
      marts relation as it builds it (and revokes grants it did not configure; the owner's own
      privileges are never touched).
    - on-run-end, `grant_analyst_schema_usage()`: USAGE on the schemas holding those relations
      (dbt's `grants` cover relations only). The dbt user must own these schemas or hold USAGE
      on them WITH GRANT OPTION.

    Nothing else is granted: raw, quarantine, staging, intermediate and ml keep PostgreSQL's
    default of no access for PUBLIC, and since PostgreSQL 15 PUBLIC cannot create in `public`.
    The role's name is the var `analyst_role` (default `analyst`).
#}
{% macro analyst_role() -%}
    {%- set role = var('analyst_role', 'analyst') -%}
    {%- if not modules.re.fullmatch('[a-z_][a-z0-9_]{0,62}', role) -%}
        {{- exceptions.raise_compiler_error(
            "var analyst_role must be a lower-case SQL identifier, got '" ~ role ~ "'"
        ) -}}
    {%- endif -%}
    {{- return(role) -}}
{%- endmacro %}

{% macro create_analyst_role() -%}
    {%- set role = analyst_role() -%}
    do $create_analyst_role$
    begin
        if not exists (select from pg_catalog.pg_roles where rolname = '{{ role }}') then
            create role {{ role }} nologin;
        end if;
    exception
        -- Created meanwhile by a dbt run on another database of the same server.
        when duplicate_object or unique_violation then
            null;
        when insufficient_privilege then
            raise exception 'role {{ role }} does not exist and % may not create roles', current_user
                using hint = 'grant the dbt user CREATEROLE, or have an administrator run: '
                    || 'create role {{ role }} nologin';
    end
    $create_analyst_role$
{%- endmacro %}

{% macro grant_analyst_schema_usage() -%}
    {%- set role = analyst_role() -%}
    {%- set schemas = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type in ('model', 'seed', 'snapshot') -%}
            {%- set readers = (node.config.get('grants') or {}).get('select') or [] -%}
            {%- if readers is string -%}{%- set readers = [readers] -%}{%- endif -%}
            {%- if role in readers and node.schema not in schemas -%}
                {%- do schemas.append(node.schema) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    do $grant_analyst_schema_usage$
    begin
    {%- for schema in schemas | sort %}
        if exists (select from pg_catalog.pg_namespace where nspname = '{{ schema }}') then
            grant usage on schema {{ adapter.quote(schema) }} to {{ role }};
        end if;
    {%- endfor %}
        null;
    end
    $grant_analyst_schema_usage$
{%- endmacro %}
