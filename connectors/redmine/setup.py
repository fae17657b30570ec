"""The Ruby script that makes a Redmine ready for a workflow (``casebridge setup redmine``).

Redmine's REST API cannot create trackers, statuses, custom fields, workflows (status transitions) or
settings, so an administrator runs this script on the server::

    cd /usr/share/redmine && RAILS_ENV=production bin/rails runner casebridge_setup.rb

The script is generated from the workflow and the connector config: everything it needs is in one JSON
document at its top, the Ruby below it is fixed. It is idempotent (``find_or_initialize_by`` on names,
transitions created only when missing) and runs in one transaction, so a failure changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from casebridge.connectors.redmine.config import RedmineConfig, field_specs, status_names
from casebridge.workflows.model import WILDCARD, Workflow

# What the role needs to work cases over REST (view, create, edit, comment, relate).
ROLE_PERMISSIONS = [
    "view_issues",
    "add_issues",
    "edit_issues",
    "add_issue_notes",
    "view_private_notes",
    "manage_issue_relations",
    "view_issue_watchers",
    "add_issue_watchers",
    "save_queries",
]


def transition_pairs(workflow: Workflow, names: dict[str, str]) -> list[tuple[str | None, str]]:
    """(from status or None for a new issue, to status) for every workflow transition.

    A new issue may start in any state so that intake can import cases that are already under way.
    """
    pairs: list[tuple[str | None, str]] = [(None, names[s]) for s in workflow.states]
    for t in workflow.transitions:
        sources = workflow.states if WILDCARD in t.sources else t.sources
        pairs += [(names[s], names[t.target]) for s in sorted(sources) if s != t.target]
    return list(dict.fromkeys(pairs))


def setup_spec(config: RedmineConfig, workflow: Workflow) -> dict[str, Any]:
    names = status_names(config, workflow)
    statuses = [{"name": names[s], "closed": st.terminal} for s, st in workflow.states.items()]
    trackers = [
        {
            "name": config.tracker,
            "default_status": names[workflow.initial],
            "description": "casebridge: cross-border data request",
        }
    ]
    projects = [
        {
            "identifier": config.project,
            "name": config.project.replace("-", " ").title(),
            "trackers": [config.tracker],
        }
    ]
    if config.liaison_project:
        statuses.append({"name": config.liaison_status, "closed": False})
        trackers.append(
            {
                "name": config.liaison_tracker,
                "default_status": config.liaison_status,
                "description": "casebridge: escalation to the INTERPOL NCB liaison queue",
            }
        )
        projects.append(
            {
                "identifier": config.liaison_project,
                "name": config.liaison_project.replace("-", " ").title(),
                "trackers": [config.liaison_tracker],
            }
        )
    fields = []
    for spec in field_specs(config, workflow):
        on = ([config.tracker] if spec.cases else []) + (
            [config.liaison_tracker] if spec.liaison and config.liaison_project else []
        )
        fields.append(
            {
                "name": spec.name,
                "format": spec.format,
                "possible_values": list(spec.possible_values),
                "regexp": spec.regexp,
                "filter": spec.filter,
                "searchable": spec.searchable,
                "trackers": on,
                "projects": [p["identifier"] for p in projects if set(p["trackers"]) & set(on)],
            }
        )
    return {
        "statuses": list({s["name"]: s for s in statuses}.values()),
        "trackers": trackers,
        "role": {"name": config.role, "permissions": ROLE_PERMISSIONS},
        "custom_fields": fields,
        "transitions": [{"tracker": config.tracker, "from": a, "to": b} for a, b in transition_pairs(workflow, names)],
        "projects": projects,
        "settings": {"cross_project_issue_relations": "1" if config.liaison_project else None},
    }


def setup_script(config: RedmineConfig, workflow: Workflow) -> str:
    """The complete ``rails runner`` script for ``workflow``."""
    spec = _readable_json(setup_spec(config, workflow))
    return (
        _HEADER.format(workflow=workflow.name, project=config.project)
        + "SPEC = JSON.parse(<<~'CASEBRIDGE_SPEC')\n"
        + spec
        + "\nCASEBRIDGE_SPEC\n"
        + _RUBY
    )


def _readable_json(spec: dict[str, Any]) -> str:
    """JSON with one list entry per line, so an administrator can review what will be created."""
    parts = []
    for key, value in spec.items():
        if isinstance(value, list):
            items = ",\n  ".join(json.dumps(v, ensure_ascii=False) for v in value)
            parts.append(f"{json.dumps(key)}: [\n  {items}\n]")
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}"


_HEADER = """\
# casebridge setup for Redmine -- workflow {workflow!r}, project {project!r}.
# Generated by `casebridge setup redmine`. Run it as a Redmine administrator on the server:
#   cd /usr/share/redmine && RAILS_ENV=production bin/rails runner /path/to/this_file.rb
# (adjust the path to your Redmine root). It is idempotent: running it again changes nothing.
# It creates: issue statuses, trackers, the role and its workflow transitions, custom fields and the
# projects; it turns on cross-project issue relations when a liaison project is configured.
# Afterwards add users to the projects with the role (Project > Settings > Members) and run
# `casebridge check`.
require 'json'
"""

_RUBY = r"""
changed = []
ActiveRecord::Base.transaction do
  statuses = SPEC['statuses'].to_h do |s|
    st = IssueStatus.find_or_initialize_by(name: s['name'])
    st.is_closed = s['closed'] if st.new_record? || st.is_closed != s['closed']
    if st.changed? then st.save!; changed << "status #{s['name']}" end
    [s['name'], st]
  end

  trackers = SPEC['trackers'].to_h do |t|
    tr = Tracker.find_or_initialize_by(name: t['name'])
    tr.default_status ||= statuses.fetch(t['default_status'])
    tr.description = t['description'] if tr.new_record?
    if tr.changed? then tr.save!; changed << "tracker #{t['name']}" end
    [t['name'], tr]
  end

  role = Role.find_or_initialize_by(name: SPEC['role']['name'])
  wanted = SPEC['role']['permissions'].map(&:to_sym)
  if role.new_record?
    role.assignable = true
    role.issues_visibility = 'all'
  end
  missing_perms = wanted - role.permissions
  role.permissions = role.permissions | wanted unless missing_perms.empty?
  if role.changed? then role.save!; changed << "role #{role.name}" end

  projects = SPEC['projects'].to_h do |p|
    pr = Project.find_or_initialize_by(identifier: p['identifier'])
    if pr.new_record?
      pr.name = p['name']
      pr.is_public = false
    end
    pr.enabled_module_names = pr.enabled_module_names | ['issue_tracking']
    want = p['trackers'].map { |n| trackers.fetch(n).id }
    # a new project would otherwise get every default tracker (Bug, Feature, ...)
    if pr.new_record?
      pr.tracker_ids = want
    elsif !(want - pr.tracker_ids).empty?
      pr.tracker_ids = pr.tracker_ids | want
    end
    if pr.new_record? || pr.changed? then pr.save!; changed << "project #{p['identifier']}" end
    [p['identifier'], pr]
  end

  SPEC['custom_fields'].each do |c|
    f = IssueCustomField.find_or_initialize_by(name: c['name'])
    if f.new_record?
      f.field_format = c['format']
      f.visible = true
      f.is_for_all = false   # enabled per project, so non-admin API users can see it in the project
      f.searchable = c['searchable']
      f.regexp = c['regexp'] unless c['regexp'].to_s.empty?
      f.edit_tag_style = 'check' if c['format'] == 'bool'
    elsif f.field_format != c['format']
      raise "custom field #{c['name']} exists with format #{f.field_format}, " \
            "expected #{c['format']}: rename or fix it"
    end
    f.is_filter = true if c['filter']
    f.possible_values = (f.possible_values | c['possible_values']) unless c['possible_values'].empty?
    f.tracker_ids = f.tracker_ids | c['trackers'].map { |n| trackers.fetch(n).id }
    if f.new_record? || f.changed? then f.save!; changed << "custom field #{c['name']}" end
    c['projects'].each do |ident|
      pr = projects.fetch(ident)
      next if pr.issue_custom_field_ids.include?(f.id)
      pr.issue_custom_field_ids = pr.issue_custom_field_ids | [f.id]
      changed << "custom field #{c['name']} in #{ident}"
    end
  end

  SPEC['transitions'].each do |t|
    w = WorkflowTransition.find_or_initialize_by(
      tracker_id: trackers.fetch(t['tracker']).id, role_id: role.id,
      old_status_id: t['from'] ? statuses.fetch(t['from']).id : 0,
      new_status_id: statuses.fetch(t['to']).id, author: false, assignee: false)
    if w.new_record? then w.save!; changed << "transition #{t['from'] || '(new)'} -> #{t['to']}" end
  end

  SPEC['settings'].each do |name, value|
    next if value.nil? || Setting.send(name).to_s == value
    Setting.send("#{name}=", value)
    changed << "setting #{name}=#{value}"
  end
end
puts(changed.empty? ? 'casebridge setup: nothing to change' : "casebridge setup: #{changed.size} changes")
changed.each { |c| puts "  + #{c}" }
"""
