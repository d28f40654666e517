/** One row of a dermtl manifest (CSV header `image,lesions,location,group`, extra columns kept). */
export interface Sample {
  /** The image path exactly as written in the manifest, relative to the manifest's folder. */
  image: string;
  /** Absolute path of the image file. */
  path: string;
  /** Lesion morphology labels; an image may have several, or none. */
  lesions: string[];
  /** Exactly one body-location label. */
  location: string;
  /** Lesion or patient id: images sharing a group never go to different folds. */
  group: string;
  /** 1-based line number in the CSV file (header is line 1), for error messages. */
  line: number;
  /** Columns other than the four above, kept as they were. */
  extra: Record<string, string>;
}

export interface Manifest {
  /** Absolute path of the CSV file. */
  file: string;
  /** Folder the image paths are relative to. */
  dir: string;
  samples: Sample[];
  /** Names of the extra columns, in file order. */
  extraColumns: string[];
}

/** What an importer or generator writes: image paths are relative to the manifest's folder. */
export interface ManifestRow {
  image: string;
  lesions: string[];
  location: string;
  group: string;
  extra?: Record<string, string>;
}
