# -*- coding: utf-8 -*-
# MIT License (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: file_sha256
author: Fleet deployer team (!UNKNOWN)
version_added: 1.2.0
short_description: The sha256 of files on the controller, read in the controller's own process
description:
  - Returns the hex sha256 of each file, or an empty string for a file that does not exist.
  - What C(ansible.builtin.stat) with C(checksum_algorithm=sha256) returns for a local file, without running a
    module (a module run costs a process and most of half a second on a busy controller).
options:
  _terms:
    description: Paths of files on the controller.
    required: true
    type: list
    elements: path
"""

EXAMPLES = r"""
- name: Refuse an artifact that does not match its published checksum
  ansible.builtin.assert:
    that: lookup('fleet.deployer.file_sha256', 'build/user-api-1.1.0-linux-amd64') == published
"""

RETURN = r"""
_raw:
  description: One hex sha256 per path given, '' for a missing file.
  type: list
  elements: str
"""

import hashlib

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def sha256_of(path):
    try:
        with open(path, 'rb') as artifact:
            return hashlib.file_digest(artifact, 'sha256').hexdigest()
    except FileNotFoundError:
        return ''
    except OSError as error:
        raise AnsibleLookupError('cannot read %s: %s' % (path, error.strerror or error)) from error


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [sha256_of(path) for path in terms]
