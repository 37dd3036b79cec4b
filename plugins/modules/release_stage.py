#!/usr/bin/python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: MIT

from __future__ import annotations


DOCUMENTATION = r"""
---
module: release_stage
short_description: Prepare a release's folder, files and service user on the host, and remove old releases
description:
  - What a release needs on the host beside its binary, in one round trip, so that staging a fleet costs one
    connection per host rather than one per file - in this order, stopping at the first step that fails.
  - Creates the system user O(user) when missing (no home, no login shell), or sets its home and shell back.
  - Creates O(release_dir) (root, mode 0755) when missing.
  - Writes each of O(files) and O(secret_files) whose content differs (a temporary file renamed over it), owned by
    root, and sets its mode.
  - Removes the releases in the folder that holds O(release_dir) beyond the O(keep) newest (by modification time),
    never O(release_dir) itself, one named in O(protect), nor the one O(current) points to.
  - Nothing it does restarts anything; RV(changed_files) tells the caller what the running service has not read,
    and O(restart_mark) keeps that on the host, for a run that is killed before the restart.
version_added: 1.2.0
options:
  user:
    description: The system user the service runs as.
    type: str
    required: true
  release_dir:
    description: The release's folder, e.g. C(/opt/user-api/releases/1.1.0); its parent holds every release.
    type: path
    required: true
  files:
    description: Files to write, each with its full content.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path of the file; its folder must exist or be O(release_dir), else nothing is changed.
        type: path
        required: true
      content:
        description: What the file holds.
        type: str
        required: true
      mode:
        description: Its mode, e.g. C(0644).
        type: raw
        default: '0644'
  secret_files:
    description:
      - Files like O(files) whose content is secret, such as the service's environment - its content never appears
        in the result, the invocation or the diff, which shows its sha256 before and after instead.
      - Its mode is set before new content replaces it, so the content is never readable with a looser mode.
    type: list
    elements: dict
    default: []
    version_added: 1.2.0
    suboptions:
      dest:
        description: Absolute path of the file, as in O(files).
        type: path
        required: true
      content:
        description: What the file holds.
        type: str
        required: true
      mode:
        description: Its mode; C(0600) lets only root read it (systemd reads an C(EnvironmentFile) as root).
        type: raw
        default: '0600'
  keep:
    description: How many releases to keep in the parent of O(release_dir), the newest first; at least 2.
    type: int
    default: 3
  protect:
    description: Names of releases never removed, e.g. the running and the previous one.
    type: list
    elements: str
    default: []
  current:
    description:
      - Path of the symlink to the release the service runs; the release it points to is never removed, whatever
        O(protect) says (after an interrupted rollback it may not be the one the caller believes runs).
    type: path
    version_added: 1.2.0
  restart_mark:
    description:
      - A file created (empty, mode 0600) before any file is written, or when O(binary) is about to change, so that
        the service's restart is owed on the host rather than in the memory of the run;
        M(fleet.deployer.release_switch) removes it once the service restarted healthy. RV(restart_pending) says
        whether it exists.
    type: path
    version_added: 1.2.0
  binary:
    description:
      - The release's binary as the caller is about to copy it; when the file on the host is missing or has another
        sha256, the restart is owed (O(restart_mark)) before the copy, which this module does not make.
    type: dict
    version_added: 1.2.0
    suboptions:
      path:
        description: Where the binary goes on the host.
        type: path
        required: true
      sha256:
        description: The sha256 of the artifact that will be copied there.
        type: str
        required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports the user, folder, files and releases it would create, change or remove, and changes nothing.
  diff_mode:
    support: full
    details: Each written file's content before and after; the sha256 of a secret file's content.
  platform:
    platforms: posix
requirements:
  - useradd and usermod (shadow-utils)
author:
  - Fleet deployer team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Stage user-api 1.1.0 beside the running release, keeping three
  fleet.deployer.release_stage:
    user: user-api
    release_dir: /opt/user-api/releases/1.1.0
    files:
      - dest: /etc/systemd/system/user-api.service
        content: "{{ lookup('ansible.builtin.template', 'service.j2') }}"
    secret_files:
      - dest: /opt/user-api/releases/1.1.0/release.env
        content: "DB_PASSWORD=\"{{ vault_db_password }}\"\n"
    keep: 3
    protect: [1.0.0, 0.9.0]
  register: staged
"""

RETURN = r"""
user_created:
  description: Whether O(user) was created (or, in check mode, would be).
  returned: always
  type: bool
  sample: false
changed_files:
  description: The O(files), then the O(secret_files), whose content was written (or would be), in the order given.
  returned: always
  type: list
  elements: str
  sample: ["/opt/user-api/releases/1.1.0/release.env"]
restart_pending:
  description: Whether O(restart_mark) exists after the task (or would) - files written now or by an earlier run
    that the running service has not read.
  returned: when O(restart_mark) is set
  type: bool
  sample: true
removed:
  description: The names of the releases removed (or that would be).
  returned: always
  type: list
  elements: str
  sample: ["0.8.0"]
"""

import contextlib
import hashlib
import os
import pwd
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleet.deployer.plugins.module_utils.atomic_file import write_atomic

HOME = '/nonexistent'
SHELL = '/usr/sbin/nologin'


def read_bytes(path):
    try:
        with open(path, 'rb') as existing:
            return existing.read()
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def private_umask():
    """atomic_move gives a file it creates 0666 less the umask: with 077 nobody else can read it before its mode is
    set."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def diff_of(dest, before, after, secret):
    """A file's diff: its content, or for a secret file the sha256 of its content ('' when it does not exist)."""
    if secret:
        before, after = [('sha256 %s\n' % hashlib.sha256(data).hexdigest()) if data is not None else ''
                         for data in (before, after.encode('utf-8'))]
        dest = '%s (secret: sha256 of its content)' % dest
    else:
        before = (before or b'').decode('utf-8', 'replace')
    return dict(before_header=dest, before=before, after_header=dest, after=after)


def old_releases(releases_dir, keep, protected):
    """The releases beyond the `keep` newest by modification time, less the protected ones, oldest last."""
    folders = [entry for entry in os.scandir(releases_dir) if entry.is_dir(follow_symlinks=False)]
    folders.sort(key=lambda entry: entry.stat(follow_symlinks=False).st_mtime, reverse=True)
    return [entry.name for entry in folders[keep:] if entry.name not in protected]


class Stage:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.release_dir = module.params['release_dir'].rstrip('/')
        self.result = dict(changed=False, user_created=False, changed_files=[], removed=[])
        self.diff = []

    def fail(self, step, why):
        self.module.fail_json(msg='%s: %s' % (step, ' '.join(str(why).split())), **self.result)

    def run_tool(self, step, *argv):
        rc, out, err = self.module.run_command([self.module.get_bin_path(argv[0], required=True)] + list(argv[1:]))
        if rc:
            self.fail(step, err or out)

    def ensure_user(self):
        name = self.params['user']
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            self.result.update(changed=True, user_created=True)
            if not self.check:
                self.run_tool('create the user %s' % name, 'useradd', '--system', '--no-create-home',
                              '--home-dir', HOME, '--shell', SHELL, name)
            return
        if (account.pw_dir, account.pw_shell) != (HOME, SHELL):
            self.result['changed'] = True
            if not self.check:
                self.run_tool('set the home and shell of %s' % name, 'usermod', '--home', HOME, '--shell', SHELL, name)

    def ensure_owned(self, path, mode):
        """Root owns path with mode; returns whether anything was (or would be) changed."""
        changed = self.module.set_owner_if_different(path, 'root', False)
        changed = self.module.set_group_if_different(path, 'root', changed)
        return self.module.set_mode_if_different(path, mode, changed)

    def ensure_release_dir(self):
        path = self.release_dir
        if not os.path.isdir(path):
            self.result['changed'] = True
            if self.check:
                return
            os.makedirs(path, mode=0o755)
        self.result['changed'] |= self.ensure_owned(path, '0755')

    def file_specs(self):
        """(spec, secret) for every file to write."""
        return [(spec, False) for spec in self.params['files']] + [(spec, True) for spec in self.params['secret_files']]

    def owe_a_restart(self):
        """The restart mark, made before the first file is written (a kill after the write still owes it)."""
        mark = self.params['restart_mark']
        if mark and not os.path.exists(mark):
            self.result['changed'] = True
            if not self.check:
                with private_umask():
                    write_atomic(self.module, mark, '')

    def binary_changes(self):
        """Whether the binary the caller copies next differs from the one on the host."""
        binary = self.params['binary']
        if not binary:
            return False
        data = read_bytes(binary['path'])
        return data is None or hashlib.sha256(data).hexdigest() != binary['sha256'].lower()

    def write_files(self):
        for spec, secret in self.file_specs():
            dest, content = spec['dest'], spec['content']
            before = read_bytes(dest)
            if before is not None:  # the mode first: new content takes the mode of the file it replaces
                self.result['changed'] |= self.ensure_owned(dest, spec['mode'])
            if before == content.encode('utf-8'):
                continue
            self.result['changed_files'].append(dest)
            self.diff.append(diff_of(dest, before, content, secret))
            self.owe_a_restart()
            if self.check:
                continue
            with private_umask():
                write_atomic(self.module, dest, content)
            self.ensure_owned(dest, spec['mode'])
        self.result['changed'] |= bool(self.result['changed_files'])

    def refuse_files_without_a_folder(self):
        """Before anything changes: every file goes into a folder that exists or into the release's."""
        for spec, _secret in self.file_specs():
            folder = os.path.dirname(spec['dest'])
            if folder != self.release_dir and not os.path.isdir(folder):
                self.fail('files', 'the folder of %s does not exist; nothing was changed' % spec['dest'])

    def remove_old_releases(self):
        releases_dir = os.path.dirname(self.release_dir)
        if not os.path.isdir(releases_dir):  # check mode on a first install
            return
        protected = set(self.params['protect']) | {os.path.basename(self.release_dir)}
        current = self.params['current']
        if current and os.path.islink(current):
            protected.add(os.path.basename(os.path.realpath(current)))
        keep = self.params['keep']
        if not os.path.isdir(self.release_dir):  # check mode: it would be made now, so the newest
            keep -= 1
        for name in old_releases(releases_dir, keep, protected):
            self.result['removed'].append(name)
            self.result['changed'] = True
            if not self.check:
                shutil.rmtree(os.path.join(releases_dir, name))

    def run(self):
        self.refuse_files_without_a_folder()
        self.ensure_user()
        self.ensure_release_dir()
        self.write_files()
        binary_changes = self.binary_changes()
        if binary_changes:
            self.owe_a_restart()
        self.remove_old_releases()
        mark = self.params['restart_mark']
        if mark:
            self.result['restart_pending'] = bool(self.result['changed_files']) or binary_changes or os.path.exists(mark)
        self.module.exit_json(diff=self.diff, **self.result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            user=dict(type='str', required=True),
            release_dir=dict(type='path', required=True),
            files=dict(type='list', elements='dict', default=[], options=dict(
                dest=dict(type='path', required=True),
                content=dict(type='str', required=True),
                mode=dict(type='raw', default='0644'),
            )),
            # Only each content is secret: where a file goes and its mode show in the result.
            secret_files=dict(type='list', elements='dict', default=[], no_log=False, options=dict(
                dest=dict(type='path', required=True),
                content=dict(type='str', required=True, no_log=True),
                mode=dict(type='raw', default='0600'),
            )),
            keep=dict(type='int', default=3),
            protect=dict(type='list', elements='str', default=[]),
            current=dict(type='path'),
            restart_mark=dict(type='path'),
            binary=dict(type='dict', options=dict(
                path=dict(type='path', required=True),
                sha256=dict(type='str', required=True),
            )),
        ),
        supports_check_mode=True,
    )
    if module.params['keep'] < 2:
        module.fail_json(msg='keep=%d: keep at least 2 releases (the current and the previous one)' % module.params['keep'])
    Stage(module).run()


if __name__ == '__main__':
    main()
