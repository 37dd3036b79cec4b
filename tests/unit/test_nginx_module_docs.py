"""The documented options of nginx_upstream and nginx_upstream_info are the ones their argument_spec takes."""

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

import nginx_upstream_conf

MODULES = Path(__file__).resolve().parents[2] / 'plugins' / 'modules'


class ModuleCreated(Exception):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs


def load_module(monkeypatch, name):
    # Modules import their helper the way Ansible ships it to the managed host.
    monkeypatch.setitem(sys.modules, 'ansible.module_utils.nginx_upstream_conf', nginx_upstream_conf)
    spec = importlib.util.spec_from_file_location(name, MODULES / (name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


@pytest.mark.parametrize('name', ['nginx_upstream', 'nginx_upstream_info'])
def test_documented_options_match_argument_spec(monkeypatch, name):
    module = load_module(monkeypatch, name)
    doc = yaml.safe_load(module.DOCUMENTATION)

    kwargs = module_kwargs(monkeypatch, module)

    assert doc['module'] == name
    assert normalized(doc['options'], 'suboptions') == normalized(kwargs['argument_spec'], 'options')
    assert kwargs['supports_check_mode'] is True
    assert doc['attributes']['check_mode']['support'] == 'full'
    yaml.safe_load(module.EXAMPLES)
    yaml.safe_load(module.RETURN)
