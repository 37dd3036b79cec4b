# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT
# The options of module_utils/nginx_file_edit.py's FILE_EDIT_ARGUMENT_SPEC, shared by the modules that edit a file.

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  path:
    description:
      - The file holding the block.
      - A symbolic link is followed and its target edited.
    type: path
    required: true
  test_command:
    description:
      - Command that checks the whole configuration once the new file is in place; split like a shell would,
        but not run through one.
      - When it fails, the original file is put back byte for byte and the task fails with the command's output.
      - An empty string skips the test.
    type: str
    default: nginx -t
  reload:
    description:
      - Run O(reload_command) when the file changed, so that the change takes effect at once.
      - When the reload fails, the original file is put back too, so the file matches what Nginx still runs.
    type: bool
    default: false
  reload_command:
    description:
      - Command that makes Nginx load the changed configuration, for example V(systemctl reload nginx).
    type: str
    default: nginx -s reload
  backup:
    description:
      - Keep a timestamped copy of the original file next to it when it changes.
    type: bool
    default: false
  lock:
    description:
      - The deploy lock this edit is made under (the fence). Before the file is written, the lock file is read on
        the host; when another run holds it, or none does, or it cannot be read, the task fails and the file is left
        byte for byte as it was.
      - The lock's guard file is held shared from the check until the reload is done, so the lock cannot be taken
        over in between.
      - Check mode and an edit that changes nothing do not read the lock.
      - Omitted, the edit is made whoever holds the lock.
    type: dict
    version_added: 1.2.0
    suboptions:
      path:
        description: The lock file, as module M(fleet.deployer.deploy_lock) writes it.
        type: path
        required: true
      run_id:
        description: The run id of this run, which must hold the lock (C(fleet_lock_run_id)).
        type: str
        required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
notes:
  - Only the words the module changes are touched; comments, other directives and other blocks of the file are
    kept byte for byte, as are the file's owner, mode and line endings.
  - The new content is written to a temporary file in the same folder and renamed over the old one, then
    O(test_command) is run. If the test or the reload fails, the original file (the same inode, so owner and mode
    too) is put back as it was.
  - Runs on the host that holds the file, with the Python standard library only.
"""
