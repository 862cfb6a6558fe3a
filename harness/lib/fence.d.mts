/** Fence untrusted text as `<untrusted-data source="...">` that its content cannot close. */
export function fence(source: string, text: string): string;
/** Defuse every fence tag in text, opening or closing, however it is spelled. */
export function defuse(text: string): string;
