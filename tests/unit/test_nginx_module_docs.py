"""What ansible-doc shows for each module (fragments merged) is what its argument_spec takes."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MODULES = ['nginx_upstream', 'nginx_upstream_info', 'nginx_split_clients']


class ModuleCreated(Exception):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs


@pytest.fixture(scope='module')
def rendered_docs():
    """ansible-doc --json of every module, as a user of the collection sees them."""
    run = subprocess.run([str(Path(sys.executable).parent / 'ansible-doc'), '--json']
                         + ['fleet.deployer.' + name for name in MODULES],
                         cwd=REPO, env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg')),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and not run.stderr, run.stderr
    return json.loads(run.stdout)


def module_kwargs(monkeypatch, module):
    """What main() passes to AnsibleModule, caught before anything runs."""
    def refuse_to_run(**kwargs):
        raise ModuleCreated(**kwargs)
    monkeypatch.setattr(module, 'AnsibleModule', refuse_to_run)
    with pytest.raises(ModuleCreated) as created:
        module.main()
    return created.value.kwargs


def normalized(options, nested_key):
    """Option fields both sides state, with Ansible's defaults filled in; nested options under nested_key."""
    return {name: {
        'type': option.get('type', 'str'),
        'required': option.get('required', False),
        'default': option.get('default'),
        'choices': option.get('choices'),
        'elements': option.get('elements'),
        'options': normalized(option[nested_key], nested_key) if nested_key in option else None,
    } for name, option in options.items()}


@pytest.mark.parametrize('name', MODULES)
def test_documented_options_match_argument_spec(monkeypatch, rendered_docs, name):
    module = importlib.import_module('ansible_collections.fleet.deployer.plugins.modules.' + name)
    doc = rendered_docs['fleet.deployer.' + name]['doc']

    kwargs = module_kwargs(monkeypatch, module)

    assert normalized(doc['options'], 'suboptions') == normalized(kwargs['argument_spec'], 'options')
    assert kwargs['supports_check_mode'] is True
    assert doc['attributes']['check_mode']['support'] == 'full'
    assert yaml.safe_load(module.RETURN)


@pytest.mark.parametrize('name', MODULES)
def test_examples_call_modules_and_filters_by_their_full_names(name):
    module = importlib.import_module('ansible_collections.fleet.deployer.plugins.modules.' + name)
    tasks = yaml.safe_load(module.EXAMPLES)

    called = {key for task in tasks for key in task if key not in ('name', 'register')}
    assert 'fleet.deployer.' + name in called
    assert all(key.startswith(('fleet.deployer.', 'ansible.builtin.')) for key in called), called
    for word in ('traffic_weights', 'upstream_servers'):
        assert module.EXAMPLES.count(word) == module.EXAMPLES.count('fleet.deployer.' + word)
