export declare const PACKAGE_ROOT: string;
export declare const BUNDLE_DIR: string;
/** The bundle's entry file when it is fresh, else null (the caller runs the sources). */
export declare function freshBundle(name: string, dir?: string, root?: string): string | null;
