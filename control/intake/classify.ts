/**
 * Rule-based classification of free-text reports (Slack threads, emails) into
 * bug / feature / question / noise. Used when no model classifier is configured;
 * it explains itself so the decision shown to people is auditable.
 */
import type { Classification } from '../types.ts';

export interface ClassifyResult {
  classification: Classification;
  reason: string;
  scores: Record<Classification, number>;
}

const RULES: Array<{ cls: Classification; weight: number; re: RegExp; label: string }> = [
  // bug signals
  { cls: 'bug', weight: 3, re: /\b\w*(error|exception|traceback|stack ?trace)\b/i, label: 'mentions an error' },
  { cls: 'bug', weight: 3, re: /\b(crash(es|ed|ing)?|broken|breaks|fails?|failing|failed|failure)\b/i, label: 'says something fails' },
  { cls: 'bug', weight: 3, re: /\b(500|502|503|504|404)\b|\binternal server error\b/i, label: 'names an HTTP error' },
  { cls: 'bug', weight: 2, re: /\b(bug|regression|wrong|incorrect|not working|doesn'?t work|does not work|stopped working|won'?t|can'?t|cannot|unable to)\b/i, label: 'describes wrong behaviour' },
  { cls: 'bug', weight: 2, re: /\b(charged twice|double charged|duplicate|missing|lost|disappeared|blank page|stuck|hangs?|frozen|timeout|timed out|slow)\b/i, label: 'describes a symptom' },
  { cls: 'bug', weight: 1, re: /\b(since (yesterday|today|the (last )?(deploy|release|update))|after the (deploy|release|update))\b/i, label: 'links it to a change' },
  // feature signals
  { cls: 'feature', weight: 3, re: /\b(feature request|would be (nice|great|cool)|it would help|please add|could you add|can you add|wish(list)?|suggestion|enhancement)\b/i, label: 'asks for something new' },
  { cls: 'feature', weight: 2, re: /\b(support for|ability to|option to|allow (us|me|users) to|integrate with|dark mode)\b/i, label: 'asks for a capability' },
  // question signals
  // Bounded: [^.!]* from every line start ran to the end of the text (quadratic: a megabyte
  // of "how" lines took minutes). 300 characters still reach across a hard-wrapped line.
  { cls: 'question', weight: 2, re: /^(how|what|where|when|why|who|is there|can i|do you|does it|is it)\b[^.!?]{0,300}\?/im, label: 'asks a question' },
  { cls: 'question', weight: 2, re: /\b(how do i|how can i|how to|is it possible|where can i find|any docs?|documentation)\b/i, label: 'asks how to' },
  // noise signals
  { cls: 'noise', weight: 3, re: /\b(unsubscribe|out of (the )?office|auto-?reply|automatic reply|newsletter|webinar|promo(tion)?|discount)\b/i, label: 'looks automated or promotional' },
  { cls: 'noise', weight: 2, re: /^\s*(thanks?( you)?|thx|ty|ok(ay)?|lol|\+1|:\w+:|👍|🙏)[\s!.]*$/i, label: 'is only an acknowledgement' },
];

/** What the rules read of a report: its signals are at its start, and the rules' time stays bounded. */
const READ_CHARS = 20_000;

export function classifyText(full: string): ClassifyResult {
  const text = full.slice(0, READ_CHARS);
  const scores: Record<Classification, number> = { bug: 0, feature: 0, question: 0, noise: 0 };
  const why: Record<Classification, string[]> = { bug: [], feature: [], question: [], noise: [] };
  for (const r of RULES) {
    if (r.re.test(text)) {
      scores[r.cls] += r.weight;
      why[r.cls].push(r.label);
    }
  }
  // Mentions say who, not what: as Slack sends them, or as redaction hashed them.
  const trimmed = text.replace(/<@(?:[A-Z0-9]+|user:[0-9a-f]+)>/g, '').trim();
  if (trimmed.length < 8) {
    scores.noise += 3;
    why.noise.push('is too short to act on');
  }
  const ranked = (Object.keys(scores) as Classification[]).sort((a, b) => scores[b] - scores[a]);
  let best = ranked[0]!;
  // Ties and silence lean to "bug": a person bothered to tell us, a look is cheap,
  // and triage may still drop it on severity.
  if (scores[best] === 0 || scores[best] === scores.bug) best = 'bug';
  const reason = scores[best] === 0 ? 'no strong signal; treated as a possible bug' : why[best].join(', ');
  return { classification: best, reason, scores };
}
