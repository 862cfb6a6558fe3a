/** What Slack and email messages share: how a commit is named and linked. */
import { isWebUrl } from '../triggers/slack-approvals.ts';

/** How messages name things outside the ticket. */
export interface MessageOptions {
  /** The branch "fixed" commits land on (target.stagingBranch). */
  stagingBranch: string;
  /** notify.commitUrl: "{commit}" becomes the full hash. */
  commitUrl?: string;
  /** Approval requests carry Approve / Skip buttons: someone may click them (triggers.slack.approvers). */
  buttons?: boolean;
}

/** A commit as `abc1234`, linked when notify.commitUrl is set. Undefined for anything that is not a hash. */
export function commitRef(commit: string | undefined, commitUrl: string | undefined): { short: string; url?: string } | undefined {
  if (!commit || !/^[0-9a-f]{7,64}$/i.test(commit)) return undefined;
  const url = commitUrl?.replaceAll('{commit}', commit);
  return { short: commit.slice(0, 7), ...(url && isWebUrl(url) ? { url } : {}) };
}
